package dev.backlogagent.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.backlogagent.testing.KernelTests;
import dev.backlogagent.testing.TestNetns;
import dev.backlogagent.testing.TestNetns.ListenerProcess;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** `backlog-agent listeners` run as a person or a script would, on real sockets. */
class ListenersCommandTest {
  private final StringWriter out = new StringWriter();
  private final StringWriter err = new StringWriter();

  private int run(String... args) {
    return BacklogAgent.execute(new PrintWriter(out), new PrintWriter(err), args);
  }

  @Test
  void jsonFollowsTheDocumentedContract() throws Exception {
    KernelTests.requireRoot();
    try (TestNetns ns = TestNetns.create("net.core.somaxconn=64")) {
      ListenerProcess server = ns.startListener("--backlog", "4", "--connect", "20");
      assertThat(run("listeners", "--json", "--netns", Long.toString(ns.inode()))).isZero();
      JsonNode doc = new ObjectMapper().readTree(out.toString());
      assertThat(fields(doc)).containsExactly("namespaces", "listeners");

      JsonNode namespace = doc.get("namespaces").get(0);
      assertThat(namespace.get("netns").asLong()).isEqualTo(ns.inode());
      assertThat(fields(namespace.get("sysctls")))
          .containsExactly("somaxconn", "tcp_max_syn_backlog", "tcp_syncookies", "tcp_abort_on_overflow");
      assertThat(namespace.get("sysctls").get("somaxconn").asInt()).isEqualTo(64);
      assertThat(fields(namespace.get("counters"))).containsExactly(
          "listen_overflows", "listen_drops", "reqq_full_drops", "reqq_full_cookies",
          "syncookies_sent", "syncookies_recv", "syncookies_failed");

      JsonNode listener = doc.get("listeners").get(0);
      assertThat(fields(listener)).containsExactly(
          "netns", "family", "address", "port", "queue", "backlog", "requested_backlog", "drops",
          "processes", "flags");
      assertThat(listener.get("family").asText()).isEqualTo("ipv4");
      assertThat(listener.get("address").asText()).isEqualTo("127.0.0.1");
      assertThat(listener.get("port").asInt()).isEqualTo(server.port());
      assertThat(listener.get("queue").asLong()).isEqualTo(5);
      assertThat(listener.get("backlog").asLong()).isEqualTo(4);
      assertThat(listener.get("requested_backlog").isNull()).isTrue();
      assertThat(listener.get("drops").asLong()).isEqualTo(ns.ss().port(server.port()).drops());
      assertThat(listener.get("flags").toString()).isEqualTo("[\"full\"]");
      JsonNode process = listener.get("processes").get(0);
      assertThat(fields(process)).containsExactly("pid", "comm", "cmdline", "container_id");
      assertThat(process.get("pid").asLong()).isEqualTo(server.pid());
      assertThat(process.get("container_id").isNull()).isTrue();
    }
  }

  @Test
  void theTableGivesTheNamespaceLimitsInAHeaderAndPutsTheFullListenerFirst() throws Exception {
    KernelTests.requireRoot();
    try (TestNetns ns = TestNetns.create("net.core.somaxconn=64")) {
      ListenerProcess idle = ns.startListener("--backlog", "1024");
      ListenerProcess full = ns.startListener("--backlog", "2", "--connect", "10");
      // --netns also takes the pid of a process in the namespace.
      assertThat(run("listeners", "--netns", Long.toString(full.pid()))).isZero();
      List<String> lines = out.toString().lines().toList();
      assertThat(lines.get(0)).startsWith("netns " + ns.inode() + " (" + ns.name() + "): somaxconn 64, tcp_max_syn_backlog ")
          .contains("ListenOverflows ");
      assertThat(lines.get(1)).containsSubsequence("LISTEN", "QUEUE", "BACKLOG", "REQUESTED", "DROPS", "FLAGS", "PROCESS");
      assertThat(lines.get(2)).contains("127.0.0.1:" + full.port()).contains("full").contains("python3[" + full.pid() + "]");
      assertThat(lines.get(3)).contains("127.0.0.1:" + idle.port()).contains("at_somaxconn").contains(" 64 ");
      // Columns line up: every row puts its QUEUE column's right edge in the same place.
      int edge = lines.get(1).indexOf("QUEUE") + "QUEUE".length();
      assertThat(lines.get(2).charAt(edge - 1)).isEqualTo('3');
      assertThat(lines.get(3).charAt(edge - 1)).isEqualTo('0');
    }
  }

  @Test
  void withAnIntervalEachLookIsADocumentAndRisingDropsAreFlagged() throws Exception {
    KernelTests.requireRoot();
    try (TestNetns ns = TestNetns.create()) {
      ListenerProcess server = ns.startListener("--backlog", "1", "--connect", "10");
      // SYNs to the full queue are retransmitted after 1 s, and each one dropped again.
      assertThat(run("listeners", "--json", "--netns", Long.toString(ns.inode()), "--port",
          Integer.toString(server.port()), "--interval", "1.5", "--count", "2")).isZero();
      List<String> docs = out.toString().lines().toList();
      assertThat(docs).hasSize(2);
      ObjectMapper json = new ObjectMapper();
      assertThat(json.readTree(docs.get(0)).get("listeners").get(0).get("flags").toString()).isEqualTo("[\"full\"]");
      assertThat(json.readTree(docs.get(1)).get("listeners").get(0).get("flags").toString())
          .isEqualTo("[\"full\",\"dropping\"]");
    }
  }

  @Test
  void badArgumentsExitWithTwoAndOneLine() {
    assertThat(run("listeners", "--port", "70000")).isEqualTo(ExitCode.BAD_INPUT);
    assertThat(err.toString().strip()).isEqualTo("backlog-agent: --port must be between 0 and 65535, not 70000");
    err.getBuffer().setLength(0);
    assertThat(run("listeners", "--netns", "4000000")).isEqualTo(ExitCode.BAD_INPUT);
    assertThat(err.toString().lines().count()).isEqualTo(1);
    assertThat(err.toString()).contains("no process with pid 4000000");
    err.getBuffer().setLength(0);
    assertThat(run("listeners", "--interval", "0")).isEqualTo(ExitCode.BAD_INPUT);
    assertThat(run("listeners", "--port", "eighty")).isEqualTo(ExitCode.BAD_INPUT);
  }

  @Test
  void traceRefusesBadArgumentsBeforeStartingAnything() {
    assertThat(run("trace", "--tier", "turbo")).isEqualTo(ExitCode.BAD_INPUT);
    assertThat(err.toString().strip()).startsWith("backlog-agent: --tier: unknown tier 'turbo'; expected one of kprobe, tracepoint");
    err.getBuffer().setLength(0);
    assertThat(run("trace", "--duration", "0")).isEqualTo(ExitCode.BAD_INPUT);
    assertThat(err.toString().strip()).isEqualTo("backlog-agent: --duration must be a positive number of seconds, not 0.0");
    err.getBuffer().setLength(0);
    assertThat(run("trace", "--port", "-1")).isEqualTo(ExitCode.BAD_INPUT);
    assertThat(run("trace", "--programs", "/nonexistent")).isEqualTo(ExitCode.BAD_INPUT);
    assertThat(out.toString()).isEmpty();
  }

  @Test
  void watchTakesTracesTracerOptionsWithTheSameWordsAndChecks() {
    for (String option : List.of("--tier", "--bpftrace", "--btf", "--programs", "--attach-timeout")) {
      assertThat(helpLine("watch", option)).as(option).isNotEmpty().isEqualTo(helpLine("trace", option));
    }
    assertThat(helpLine("watch", "--tier")).contains("libbpf-tools, ftrace");
    for (String[] bad : List.of(new String[] {"--tier", "turbo"}, new String[] {"--btf", "/nonexistent"},
        new String[] {"--attach-timeout", "0"}, new String[] {"--programs", "/nonexistent"})) {
      String[] messages = new String[2];
      String[] commands = {"trace", "watch"};
      for (int i = 0; i < 2; i++) {
        err.getBuffer().setLength(0);
        assertThat(run(commands[i], bad[0], bad[1])).as(commands[i] + " " + bad[0]).isEqualTo(ExitCode.BAD_INPUT);
        messages[i] = err.toString().strip();
      }
      assertThat(messages[1]).as(bad[0]).startsWith("backlog-agent: " + bad[0]).isEqualTo(messages[0]);
    }
  }

  /** The lines of a command's --help from an option's name to the next option. */
  private String helpLine(String command, String option) {
    out.getBuffer().setLength(0);
    run(command, "--help");
    StringBuilder text = new StringBuilder();
    boolean in = false;
    for (String line : out.toString().lines().toList()) {
      String t = line.strip();
      if (t.startsWith("-")) {
        in = t.startsWith(option + "=") || t.startsWith(option + " ");
      }
      if (in) {
        text.append(t).append(' ');
      }
    }
    return text.toString().strip().replaceAll("\\s+", " "); // picocli pads the columns per command
  }

  private static List<String> fields(JsonNode node) {
    List<String> names = new ArrayList<>();
    node.fieldNames().forEachRemaining(names::add);
    return names;
  }
}
