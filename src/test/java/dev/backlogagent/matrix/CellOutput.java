package dev.backlogagent.matrix;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What src/test/matrix/scenarios.sh printed for one cell, parsed: per phase (a trace run), the agent's lines and
 * stderr beside each scenario's kernel numbers (ss, nstat in its namespace); per label, doctor's document.
 */
record CellOutput(
    List<JsonNode> env,
    Map<String, JsonNode> doctors,
    Map<String, JsonNode> phases,
    Map<String, List<JsonNode>> trace,
    Map<String, List<String>> traceErr,
    Map<String, Map<String, JsonNode>> scenarios) {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Pattern LINE = Pattern.compile("^(ENV|DOCTOR|PHASE|TRACE|TRACE_ERR|SCENARIO) (\\S+) (.*)$");
  private static final Pattern TRACING = Pattern.compile("^tracing at tier (\\S+) \\((.*?)\\): (?:programs \\[(.*)\\]|no BPF programs.*)$");
  private static final Pattern NOT_RUNNING = Pattern.compile("^not running (\\S+): (.*)$");
  // ConcernStatus.line(): "concern drops: runs (drops.bt)", "... runs as variant X (why)", "... degraded, runs X: lost",
  // "... cannot: why", "... off (why)".
  private static final Pattern CONCERN = Pattern.compile(
      "^concern (\\S+): (?:runs \\((\\S+)\\)|runs as variant (\\S+)(?: \\((.*)\\))?|degraded, runs (\\S+): (.*)|cannot: (.*)|off \\((.*)\\))$");

  static CellOutput parse(String text) throws JsonProcessingException {
    List<JsonNode> env = new ArrayList<>();
    Map<String, JsonNode> doctors = new LinkedHashMap<>();
    Map<String, JsonNode> phases = new LinkedHashMap<>();
    Map<String, List<JsonNode>> trace = new LinkedHashMap<>();
    Map<String, List<String>> traceErr = new LinkedHashMap<>();
    Map<String, Map<String, JsonNode>> scenarios = new LinkedHashMap<>();
    for (String raw : text.split("\n")) {
      Matcher m = LINE.matcher(raw.replace("\r", ""));
      if (!m.matches()) {
        continue;
      }
      String label = m.group(2);
      String rest = m.group(3);
      switch (m.group(1)) {
        case "ENV" -> env.add(JSON.readTree(rest));
        case "DOCTOR" -> doctors.put(label, JSON.readTree(rest));
        case "PHASE" -> phases.put(label, JSON.readTree(rest));
        case "TRACE" -> trace.computeIfAbsent(label, k -> new ArrayList<>()).add(JSON.readTree(rest));
        case "TRACE_ERR" -> traceErr.computeIfAbsent(label, k -> new ArrayList<>()).add(rest);
        case "SCENARIO" -> {
          JsonNode s = JSON.readTree(rest);
          scenarios.computeIfAbsent(label, k -> new LinkedHashMap<>()).put(s.path("name").asText(), s);
        }
        default -> { }
      }
    }
    return new CellOutput(env, doctors, phases, trace, traceErr, scenarios);
  }

  /** What trace said about its BPF programs in a phase: its tier, the concerns running, those it cannot run. */
  record Programs(String tier, String tierReason, List<String> running, Map<String, String> cannot,
      Map<String, Status> concerns) {}

  /** One concern line: state runs, variant, degraded, cannot or off; the program; why, or what is lost. */
  record Status(String state, String program, String detail) {}

  Optional<Programs> programs(String phase) {
    String tier = null;
    String reason = null;
    List<String> running = new ArrayList<>();
    Map<String, String> cannot = new LinkedHashMap<>();
    Map<String, Status> concerns = new LinkedHashMap<>();
    for (String line : traceErr.getOrDefault(phase, List.of())) {
      Matcher t = TRACING.matcher(line);
      Matcher n = NOT_RUNNING.matcher(line);
      Matcher c = CONCERN.matcher(line);
      if (c.matches()) {
        Status status = c.group(2) != null ? new Status("runs", c.group(2), null)
            : c.group(3) != null ? new Status("variant", c.group(3), c.group(4))
            : c.group(5) != null ? new Status("degraded", c.group(5), c.group(6))
            : c.group(7) != null ? new Status("cannot", null, c.group(7))
            : new Status("off", null, c.group(8));
        concerns.put(c.group(1), status);
      } else if (t.matches()) {
        tier = t.group(1);
        reason = t.group(2);
        if (t.group(3) != null && !t.group(3).isBlank()) {
          for (String name : t.group(3).split(",\\s*")) {
            running.add(name.strip());
          }
        }
      } else if (n.matches()) {
        cannot.put(n.group(1), n.group(2));
      }
    }
    return tier == null ? Optional.empty() : Optional.of(new Programs(tier, reason, running, cannot, concerns));
  }

  /** The trace lines of a phase of one type, in one scenario's namespace and on a port, since it began. */
  List<JsonNode> lines(String phase, JsonNode scenario, String type, Integer port) {
    String since = scenario.path("since").asText("");
    long netns = scenario.path("netns").asLong();
    return trace.getOrDefault(phase, List.of()).stream()
        .filter(l -> l.path("type").asText().equals(type))
        .filter(l -> l.path("netns").asLong() == netns)
        .filter(l -> port == null || l.path("port").asInt() == port)
        .filter(l -> l.path("time").asText().compareTo(since) >= 0)
        .toList();
  }

  /** A counter's rise in a scenario's namespace (nstat -asz before and after). */
  static long delta(JsonNode scenario, String counter) {
    return scenario.path("after").path(counter).asLong() - scenario.path("before").path(counter).asLong();
  }

  /** From an `ss -ltnmH` line: Recv-Q, Send-Q and the listener's drops (skmem d). */
  record Ss(long recvQ, long sendQ, long drops) {
    private static final Pattern SS = Pattern.compile("^LISTEN\\s+(\\d+)\\s+(\\d+)\\s.*?(?:,d(\\d+)\\))?$");

    static Optional<Ss> parse(String line) {
      Matcher m = SS.matcher(line == null ? "" : line.strip());
      if (!m.matches()) {
        return Optional.empty();
      }
      return Optional.of(new Ss(Long.parseLong(m.group(1)), Long.parseLong(m.group(2)),
          m.group(3) == null ? -1 : Long.parseLong(m.group(3))));
    }
  }
}
