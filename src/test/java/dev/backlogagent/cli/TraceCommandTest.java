package dev.backlogagent.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.backlogagent.testing.KernelTests;
import dev.backlogagent.testing.Nstat;
import dev.backlogagent.testing.TestNetns;
import dev.backlogagent.testing.TestNetns.ListenerProcess;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * `backlog-agent trace` end to end on this kernel: the recipes of the kernel notes each produce the right
 * events, on the right listener and process, with numbers that match ss and nstat over the same period.
 */
class TraceCommandTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @BeforeAll
  static void kernel() {
    KernelTests.assumeKernel("trace end to end");
    KernelTests.requireCommand("ip");
    KernelTests.requireCommand("python3");
  }

  /** Runs trace --json for the namespace while {@code load} runs; returns the JSON lines. */
  private static List<JsonNode> trace(TestNetns ns, double seconds, Callable<?> load, String... extra) throws Exception {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    List<String> args = new ArrayList<>(List.of("trace", "--json", "--netns", Long.toString(ns.inode()),
        "--duration", Double.toString(seconds)));
    args.addAll(List.of(extra));
    int[] exit = {-1};
    Thread tracer = new Thread(() -> exit[0] = BacklogAgent.execute(new PrintWriter(out), new PrintWriter(err),
        args.toArray(String[]::new)));
    tracer.start();
    long deadline = System.currentTimeMillis() + 60_000;
    while (!err.toString().contains("tracing at tier") && System.currentTimeMillis() < deadline && tracer.isAlive()) {
      Thread.sleep(50);
    }
    assertThat(err.toString()).contains("tracing at tier tracepoint").contains("LISTEN").doesNotContain("not running");
    load.call();
    tracer.join(120_000);
    assertThat(exit[0]).as("exit code; stderr: %s", err).isZero();
    List<JsonNode> lines = new ArrayList<>();
    for (String line : out.toString().split("\n")) {
      if (!line.isBlank()) {
        lines.add(JSON.readTree(line));
      }
    }
    return lines;
  }

  private static List<JsonNode> ofType(List<JsonNode> lines, String type, int port) {
    return lines.stream().filter(l -> l.path("type").asText().equals(type) && l.path("port").asInt() == port).toList();
  }

  @Test
  void anAcceptQueueOverflowIsReportedOnItsListenerAndProcessWithDropsMatchingSsAndNstat() throws Exception {
    try (TestNetns ns = TestNetns.create()) {
      Nstat before = ns.nstat();
      ListenerProcess[] server = new ListenerProcess[1];
      List<JsonNode> lines = trace(ns, 7, () -> {
        server[0] = ns.startListener("--backlog", "4", "--connect", "40", "--close-after", "2.5");
        return null;
      });
      int port = server[0].port();
      long ssDrops = ns.ss().port(port).drops();
      Nstat after = ns.nstat();

      List<JsonNode> listen = ofType(lines, "listen", port);
      assertThat(listen).singleElement().satisfies(l -> {
        assertThat(l.path("pid").asLong()).isEqualTo(server[0].pid());
        assertThat(l.path("requested_backlog").asLong()).isEqualTo(4);
        assertThat(l.path("backlog").asLong()).isEqualTo(4);
        assertThat(l.path("truncated").asBoolean()).isFalse();
      });
      List<JsonNode> overflows = ofType(lines, "accept_queue_overflow", port);
      assertThat(overflows).isNotEmpty().allSatisfy(o -> {
        assertThat(o.path("pid").asLong()).isEqualTo(server[0].pid());
        assertThat(o.path("comm").asText()).startsWith("python3");
        assertThat(o.path("netns").asLong()).isEqualTo(ns.inode());
        assertThat(o.path("address").asText()).isEqualTo("127.0.0.1");
        assertThat(o.path("queue").asLong()).isEqualTo(5);
        assertThat(o.path("backlog").asLong()).isEqualTo(4);
        assertThat(o.path("requested_backlog").asLong()).isEqualTo(4);
      });
      long reported = overflows.stream().mapToLong(o -> o.path("drops").asLong()).sum();
      long overflowDelta = after.get("TcpExtListenOverflows") - before.get("TcpExtListenOverflows");
      assertThat(reported).isPositive().isEqualTo(ssDrops).isEqualTo(overflowDelta);
    }
  }

  @Test
  void listenAsking1024InANamespaceWithSomaxconn64IsReportedTruncated() throws Exception {
    try (TestNetns ns = TestNetns.create("net.core.somaxconn=64")) {
      ListenerProcess[] server = new ListenerProcess[1];
      List<JsonNode> lines = trace(ns, 3, () -> {
        server[0] = ns.startListener("--backlog", "1024");
        return null;
      });
      assertThat(ofType(lines, "listen", server[0].port())).singleElement().satisfies(l -> {
        assertThat(l.path("requested_backlog").asLong()).isEqualTo(1024);
        assertThat(l.path("backlog").asLong()).isEqualTo(64).isEqualTo(ns.ss().port(server[0].port()).sendQ());
        assertThat(l.path("somaxconn").asInt()).isEqualTo(64);
        assertThat(l.path("truncated").asBoolean()).isTrue();
        assertThat(l.path("pid").asLong()).isEqualTo(server[0].pid());
      });
    }
  }

  @Test
  void aSlowAcceptingServersWaitsAreMeasured() throws Exception {
    try (TestNetns ns = TestNetns.create()) {
      ListenerProcess[] server = new ListenerProcess[1];
      List<JsonNode> lines = trace(ns, 5, () -> {
        server[0] = ns.startListener("--backlog", "16", "--connect", "4", "--accept-every", "0.3");
        return null;
      });
      List<JsonNode> slow = ofType(lines, "slow_accept", server[0].port());
      // Four connections accepted 0.3 s apart wait about 0.3, 0.6, 0.9 and 1.2 s (one line per second at most).
      assertThat(slow).isNotEmpty().allSatisfy(s -> {
        assertThat(s.path("wait_ms").asDouble()).isBetween(250.0, 1600.0);
        assertThat(s.path("pid").asLong()).isEqualTo(server[0].pid());
      });
    }
  }
}
