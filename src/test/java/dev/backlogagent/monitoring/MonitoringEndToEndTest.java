package dev.backlogagent.monitoring;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.backlogagent.testing.DaemonProcess;
import dev.backlogagent.testing.KernelTests;
import dev.backlogagent.testing.OtlpReceiver;
import dev.backlogagent.testing.PrometheusServer;
import dev.backlogagent.testing.PrometheusServer.Alert;
import dev.backlogagent.testing.TestNetns;
import dev.backlogagent.testing.TestNetns.ListenerProcess;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The rules and the dashboard against the real thing: the daemon exports a real accept-queue overflow, a
 * backlog clamped by somaxconn and a SYN flood answered with cookies, with its span export failing; Debian's
 * Prometheus scrapes it with the shipped rules loaded. The alerts hold on exactly those listeners, naming them
 * and their processes; every metric the dashboard and the rules name is in the scrape (but the one documented as
 * expected), the rules' unit test uses the scrape's label sets, and Prometheus accepts every dashboard query.
 */
class MonitoringEndToEndTest {
  private static final Pattern SAMPLE = Pattern.compile("^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\\{(.*)})?\\s+\\S+.*$");
  private static final Pattern LABEL = Pattern.compile("([a-zA-Z_][a-zA-Z0-9_]*)=\"(?:[^\"\\\\]|\\\\.)*\"");
  private static final Set<String> ADDED_BY_PROMETHEUS = Set.of("job", "instance");
  /**
   * Labels a series has only sometimes: a listener's owner when the agent found it (and its container), a
   * namespace's name when it is pinned under /run/netns (this test's namespaces all are, the host's is not).
   */
  private static final Set<String> OPTIONAL = Set.of("process_executable_name", "process_pid", "container_id", "netns_name");

  @TempDir Path dir;

  /** Per metric name, the label-name sets its samples have in an exposition. */
  static Map<String, Set<Set<String>>> shapes(String exposition) {
    Map<String, Set<Set<String>>> shapes = new TreeMap<>();
    for (String line : exposition.split("\n")) {
      Matcher m = SAMPLE.matcher(line);
      if (line.startsWith("#") || !m.matches()) {
        continue;
      }
      Set<String> names = new TreeSet<>();
      if (m.group(2) != null) {
        Matcher l = LABEL.matcher(m.group(2));
        while (l.find()) {
          names.add(l.group(1));
        }
      }
      names.remove("le");
      shapes.computeIfAbsent(m.group(1), k -> new java.util.HashSet<>()).add(names);
    }
    return shapes;
  }

  private static void flood(TestNetns ns, int port) throws Exception {
    KernelTests.requireCommand("hping3");
    new ProcessBuilder("ip", "netns", "exec", ns.name(), "timeout", "3", "hping3", "-q", "-S", "-p",
        Integer.toString(port), "-i", "u10000", "--rand-source", "127.0.0.1")
        .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start().waitFor();
  }

  private static Alert alert(List<Alert> alerts, String name, String label, String value) {
    return alerts.stream().filter(a -> a.labels().get("alertname").equals(name) && value.equals(a.labels().get(label)))
        .findFirst().orElse(null);
  }

  @Test
  void theShippedRulesAndDashboardHoldOnTheRealDaemonsMetrics() throws Exception {
    KernelTests.assumeKernel("the Prometheus rules and the dashboard on a real scrape");
    KernelTests.requireCommand("python3");
    try (TestNetns web = TestNetns.create("net.core.somaxconn=64");
        TestNetns edge = TestNetns.create("net.ipv4.tcp_syncookies=1");
        OtlpReceiver collector = OtlpReceiver.start(OtlpReceiver.Protocol.GRPC)) {
      int endpoint = DaemonProcess.freePort();
      int nobody = DaemonProcess.freePort(); // spans go where nothing listens: the traces export fails
      Path config = DaemonProcess.config(dir, """
          interval: 1s
          state_file: %s
          listeners: {netns: ["%d", "%d"]}
          incidents: {quiet_period: 30s}
          exporters: {prometheus: {port: %d}}
          """.formatted(dir.resolve("state.json"), web.inode(), edge.inode(), endpoint));
      Map<String, String> env = new HashMap<>(collector.exporterEnvironment());
      env.put("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:" + nobody);
      env.put("OTEL_METRIC_EXPORT_INTERVAL", "1000");
      env.put("OTEL_BSP_SCHEDULE_DELAY", "500");
      try (DaemonProcess daemon = DaemonProcess.start(env, "--config", config.toString());
          PrometheusServer prometheus = PrometheusServer.start(endpoint, List.of(MonitoringFiles.RULES))) {
        daemon.awaitStarted();
        // Started once the programs run, so that their listen() calls are seen (requested backlogs).
        ListenerProcess overflowing = web.startListener("--backlog", "4", "--connect", "40");
        ListenerProcess clamped = web.startListener("--backlog", "1024");
        // Its connections wait 0.2 to 0.8 s: slow-accept spans, which end at once and fail to export.
        ListenerProcess accepting = web.startListener("--backlog", "16", "--connect", "4", "--accept-every", "0.2");
        ListenerProcess flooded = edge.startListener("--backlog", "8");
        String target = prometheus.target();
        String edgeInode = Long.toString(edge.inode());
        // The cookie alert is a rate: Prometheus must hold a sample of the namespace's counter from before the
        // flood, or the first sample already holds all of it and the rate stays 0 (seen in a loaded CI run, where
        // Prometheus's first scrape came after the 3 s flood).
        prometheus.awaitQuery("tcp_ext_syncookies_sent_total{netns_inode=\"" + edgeInode + "\"}", r -> !r.isEmpty(),
            Duration.ofSeconds(30));
        flood(edge, flooded.port());

        List<Alert> alerts = awaitAlerts(prometheus, a -> alert(a, "BacklogAgentListenerDropping", "network_local_port",
                Integer.toString(overflowing.port())) != null
            && alert(a, "BacklogAgentAcceptQueueFull", "network_local_port", Integer.toString(overflowing.port())) != null
            && alert(a, "BacklogAgentBacklogTruncated", "network_local_port", Integer.toString(clamped.port())) != null
            && alert(a, "BacklogAgentSynCookies", "netns_inode", edgeInode) != null
            // its description lists the listeners retransmitting SYN-ACKs as of the evaluation that rendered it
            && alert(a, "BacklogAgentSynCookies", "netns_inode", edgeInode).annotations().get("description")
                .contains(":" + flooded.port())
            && alert(a, "BacklogAgentExportFailing", "backlog_agent_signal", "traces") != null);

        String who = "python3[" + overflowing.pid() + "] on 127.0.0.1:" + overflowing.port();
        Alert dropping = alert(alerts, "BacklogAgentListenerDropping", "network_local_port", Integer.toString(overflowing.port()));
        assertThat(dropping.labels()).containsEntry("process_pid", Long.toString(overflowing.pid()))
            .containsEntry("process_executable_name", "python3").containsEntry("netns_inode", Long.toString(web.inode()))
            .containsEntry("instance", target).containsEntry("severity", "warning");
        assertThat(dropping.annotations().get("summary")).isEqualTo(who + " drops connections");
        assertThat(dropping.annotations().get("description")).startsWith("The listener 127.0.0.1:" + overflowing.port()
            + " of python3[" + overflowing.pid() + "] in netns " + web.inode() + " on " + target + " dropped ");
        Alert full = alert(alerts, "BacklogAgentAcceptQueueFull", "network_local_port", Integer.toString(overflowing.port()));
        assertThat(full.annotations().get("summary")).isEqualTo(who + " has a full accept queue");
        assertThat(full.annotations().get("description")).startsWith("5 connections wait in the accept queue of 127.0.0.1:"
            + overflowing.port()).contains("more than its backlog of 4: python3[" + overflowing.pid() + "] does not accept");
        Alert truncated = alert(alerts, "BacklogAgentBacklogTruncated", "network_local_port", Integer.toString(clamped.port()));
        assertThat(truncated.annotations().get("description")).isEqualTo("python3[" + clamped.pid() + "] called listen() with a"
            + " backlog of 1024 on 127.0.0.1:" + clamped.port() + " (netns " + web.inode() + " on " + target + ") and got 64:"
            + " net.core.somaxconn of that namespace is 64. Raise the sysctl in that namespace, or ask for less.");
        Alert cookies = alert(alerts, "BacklogAgentSynCookies", "netns_inode", Long.toString(edge.inode()));
        assertThat(cookies.annotations().get("description")).contains("Listeners there retransmitting SYN-ACKs: python3["
            + flooded.pid() + "] on 127.0.0.1:" + flooded.port() + ".");
        assertThat(alert(alerts, "BacklogAgentExportFailing", "backlog_agent_signal", "traces").annotations().get("summary"))
            .isEqualTo("backlog-agent on " + target + " fails to export traces over OTLP");
        // Nothing about the listener that accepts, nor about the metrics export, which succeeds; nor is the agent blind.
        assertThat(alerts).noneMatch(a -> Integer.toString(accepting.port()).equals(a.labels().get("network_local_port")));
        assertThat(alerts).noneMatch(a -> "metrics".equals(a.labels().get("backlog_agent_signal")));
        assertThat(alerts).noneMatch(a -> a.labels().get("alertname").equals("BacklogAgentCountersOnly"));
        // Every concern this tracepoint-tier host should run runs (syn_refused, kprobe-only, is left out by the rule).
        assertThat(prometheus.query("backlog_agent_concern_running{backlog_agent_concern=\"syn_refused\"}"))
            .singleElement().satisfies(c -> assertThat(c.labels()).containsEntry("backlog_agent_concern_state", "cannot"));
        assertThat(alerts).noneMatch(a -> a.labels().get("alertname").equals("BacklogAgentConcernNotRunning"));

        String scrape = DaemonProcess.scrape(endpoint);
        Map<String, Set<Set<String>>> shapes = shapes(scrape);
        Set<String> exported = shapes.keySet();
        assertThat(exported).contains("tcp_listen_accept_wait_seconds_bucket", "backlog_agent_export_failures_total",
            "backlog_agent_export_last_success_seconds", "tcp_state_transitions_total");

        Set<String> dashboardNames = MonitoringFiles.metricNames(MonitoringFiles.dashboardQueries());
        assertThat(exported).as("metrics the dashboard names").containsAll(dashboardNames);
        Set<String> ruleNames = MonitoringFiles.metricNames(MonitoringFiles.rules().stream().map(MonitoringFiles.Rule::expr).toList());
        ruleNames.removeAll(MonitoringFiles.EXPECTED_METRICS);
        assertThat(exported).as("metrics the rules name").containsAll(ruleNames);
        for (String expected : MonitoringFiles.EXPECTED_METRICS) {
          assertThat(exported).as("%s is exported now: take it out of EXPECTED_METRICS and check its labels", expected)
              .doesNotContain(expected);
        }

        // The unit test's series have the label names of the real ones (Prometheus adds job and instance).
        for (JsonNode test : MonitoringFiles.rulesTest().path("tests")) {
          for (JsonNode series : test.path("input_series")) {
            String line = series.path("series").asText() + " 0";
            Matcher m = SAMPLE.matcher(line);
            assertThat(m.matches()).as(line).isTrue();
            if (MonitoringFiles.EXPECTED_METRICS.contains(m.group(1))) {
              continue;
            }
            Set<String> names = shapes(line).get(m.group(1)).iterator().next();
            names.removeAll(ADDED_BY_PROMETHEUS);
            assertThat(shapes.get(m.group(1))).as("label sets of %s in the scrape, for the test's %s", m.group(1), line)
                .anyMatch(real -> real.containsAll(names) && OPTIONAL.containsAll(difference(real, names)));
          }
        }

        // Prometheus accepts every dashboard query, and those about listeners find this test's.
        for (String query : MonitoringFiles.dashboardQueries()) {
          if (query.startsWith("label_values(")) {
            continue; // Grafana's, not PromQL: its metric is checked above
          }
          String promql = query.replace("$__rate_interval", "1m").replace("$instance", ".*").replace("$netns", ".*")
              .replace("$port", ".*");
          List<PrometheusServer.Sample> result = prometheus.query(promql);
          if (query.contains("tcp_listen_queue_limit") || query.contains("tcp_listen_drops_total")
              || query.contains("backlog_agent_tier")) {
            assertThat(result).as(promql).isNotEmpty();
          }
        }
        assertThat(Files.exists(MonitoringFiles.DASHBOARD)).isTrue();
      }
    }
  }

  private static Set<String> difference(Set<String> a, Set<String> b) {
    Set<String> d = new TreeSet<>(a);
    d.removeAll(b);
    return d;
  }

  private static List<Alert> awaitAlerts(PrometheusServer prometheus, java.util.function.Predicate<List<Alert>> done)
      throws Exception {
    long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
    List<Alert> alerts = List.of();
    while (System.nanoTime() < deadline) {
      alerts = prometheus.alerts();
      if (done.test(alerts)) {
        return alerts;
      }
      Thread.sleep(500);
    }
    throw new AssertionError("the alerts did not all come within 60 s; last: " + alerts);
  }
}
