package dev.backlogagent.monitoring;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.backlogagent.testing.KernelTests;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The shipped rules pass promtool's check, and promtool's unit test (backlog-agent.rules.test.yml) proves each
 * alert fires on series of the agent's shape and stays silent on a healthy host. That the test's series have the
 * shape of a real scrape is MonitoringEndToEndTest's part.
 */
class PrometheusRulesTest {
  private record Run(int exit, String output) {}

  private static Run promtool(String... args) throws IOException, InterruptedException {
    Path promtool = KernelTests.requireCommand("promtool", "checking the Prometheus rules");
    List<String> command = new ArrayList<>(List.of(promtool.toString()));
    command.addAll(List.of(args));
    Process p = new ProcessBuilder(command).directory(Path.of("agent/prometheus").toFile()).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
    return new Run(p.exitValue(), out);
  }

  @Test
  void promtoolChecksTheRules() throws Exception {
    Run run = promtool("check", "rules", "backlog-agent.rules.yml");
    assertThat(run.exit()).as(run.output()).isZero();
    assertThat(run.output()).contains("SUCCESS: " + MonitoringFiles.rules().size() + " rules found");
  }

  @Test
  void promtoolsUnitTestOfTheRulesPasses() throws Exception {
    Run run = promtool("test", "rules", "backlog-agent.rules.test.yml");
    assertThat(run.exit()).as(run.output()).isZero();
    assertThat(run.output()).contains("SUCCESS");
  }

  @Test
  void everyAlertFiresInTheUnitTestAndIsSilentOnTheHealthyHost() throws Exception {
    Set<String> fired = new TreeSet<>();
    Set<String> silentWhenHealthy = new TreeSet<>();
    for (JsonNode test : MonitoringFiles.rulesTest().path("tests")) {
      boolean healthy = test.path("name").asText().startsWith("a healthy host");
      for (JsonNode t : test.path("alert_rule_test")) {
        String name = t.path("alertname").asText();
        if (!t.path("exp_alerts").isEmpty()) {
          assertThat(healthy).as("%s expected to fire on the healthy host", name).isFalse();
          fired.add(name);
        } else if (healthy) {
          silentWhenHealthy.add(name);
        }
      }
    }
    Set<String> alerts = new TreeSet<>(MonitoringFiles.alerts().stream().map(MonitoringFiles.Rule::alert).toList());
    assertThat(alerts).hasSizeGreaterThanOrEqualTo(11);
    assertThat(fired).isEqualTo(alerts);
    assertThat(silentWhenHealthy).isEqualTo(alerts);
  }

  @Test
  void everyAlertHasASeverityASummaryAndADescriptionAndTheListenerOnesNameListenerAndProcess() throws Exception {
    for (MonitoringFiles.Rule alert : MonitoringFiles.alerts()) {
      assertThat(alert.labels().path("severity").asText()).as(alert.alert()).isIn("info", "warning", "critical");
      String summary = alert.annotations().path("summary").asText();
      String description = alert.annotations().path("description").asText();
      assertThat(summary).as(alert.alert()).isNotBlank();
      assertThat(description).as(alert.alert()).isNotBlank().contains("$labels.instance");
      if (alert.expr().startsWith("tcp_listen") || alert.expr().contains("(tcp_listen")) {
        for (String text : List.of(summary, description)) {
          assertThat(text).as(alert.alert()).contains("$labels.process_executable_name", "$labels.process_pid",
              "$labels.network_local_address", "$labels.network_local_port");
        }
      }
    }
  }
}
