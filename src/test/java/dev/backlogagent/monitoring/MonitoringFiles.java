package dev.backlogagent.monitoring;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/** The rules and the dashboard the agent ships (agent/prometheus, agent/grafana), as the tests read them. */
final class MonitoringFiles {
  static final Path RULES = Path.of("agent/prometheus/backlog-agent.rules.yml");
  static final Path RULES_TEST = Path.of("agent/prometheus/backlog-agent.rules.test.yml");
  static final Path DASHBOARD = Path.of("agent/grafana/backlog-agent.dashboard.json");
  /**
   * Metrics the rules use that the agent does not export yet. Empty: tcp_listen_trouble and
   * tcp_listen_accept_stalled (the diagnosis, docs/diagnosis.md) are exported, and checked like the rest.
   */
  static final Set<String> EXPECTED_METRICS = Set.of();

  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());
  private static final ObjectMapper JSON = new ObjectMapper();

  private MonitoringFiles() {}

  /** One rule of the rules file: an alert or a recording rule, its expression, labels and annotations. */
  record Rule(String group, String alert, String record, String expr, JsonNode labels, JsonNode annotations) {}

  static List<Rule> rules() throws IOException {
    List<Rule> rules = new ArrayList<>();
    for (JsonNode group : YAML.readTree(RULES.toFile()).path("groups")) {
      for (JsonNode r : group.path("rules")) {
        rules.add(new Rule(group.path("name").asText(), r.path("alert").asText(null), r.path("record").asText(null),
            r.path("expr").asText(), r.path("labels"), r.path("annotations")));
      }
    }
    return rules;
  }

  static List<Rule> alerts() throws IOException {
    return rules().stream().filter(r -> r.alert() != null).toList();
  }

  static JsonNode rulesTest() throws IOException {
    return YAML.readTree(RULES_TEST.toFile());
  }

  static JsonNode dashboard() throws IOException {
    return JSON.readTree(DASHBOARD.toFile());
  }

  /** Every panel of the dashboard, those inside collapsed rows too. */
  static List<JsonNode> panels() throws IOException {
    List<JsonNode> panels = new ArrayList<>();
    for (JsonNode p : dashboard().path("panels")) {
      panels.add(p);
      p.path("panels").forEach(panels::add);
    }
    return panels;
  }

  /** Every PromQL expression of the dashboard: the panels' targets and the template variables' queries. */
  static List<String> dashboardQueries() throws IOException {
    List<String> queries = new ArrayList<>();
    for (JsonNode p : panels()) {
      for (JsonNode t : p.path("targets")) {
        queries.add(t.path("expr").asText());
      }
    }
    for (JsonNode v : dashboard().path("templating").path("list")) {
      if ("query".equals(v.path("type").asText())) {
        queries.add(v.path("query").path("query").asText(v.path("query").asText()));
      }
    }
    return queries;
  }

  static Set<String> metricNames(List<String> expressions) {
    Set<String> names = new TreeSet<>();
    for (String e : expressions) {
      names.addAll(PromQl.metricNames(e));
    }
    return names;
  }

  /** The names recording rules make: not the agent's, but the rules' own. */
  static Set<String> recordedNames() throws IOException {
    Set<String> names = new TreeSet<>();
    for (Rule r : rules()) {
      if (r.record() != null) {
        names.add(r.record());
      }
    }
    return names;
  }
}
