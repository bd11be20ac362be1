package dev.backlogagent.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.backlogagent.bpf.TracepointFormats;
import dev.backlogagent.testing.DaemonProcess;
import dev.backlogagent.testing.KernelTests;
import dev.backlogagent.testing.PrometheusText;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * doctor, trace and run say, one line per concern, what runs, as which variant, and what cannot and why;
 * the daemon exports the same as a gauge. On this kernel, with the real bpftrace: a concern is made
 * unable by a program that does not compile (a copy of bpf/ with one file broken), or pushed to its
 * variant by a format file without the field its main program reads (the override directory), and the
 * variant then really runs here.
 */
class ConcernStatusLinesTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Path BPF = Path.of("bpf");

  @TempDir Path dir;

  @BeforeAll
  static void kernel() {
    KernelTests.assumeKernel("concern status lines on this kernel");
  }

  /** A copy of bpf/ whose {@code files} read a field no tracepoint has: they compile nowhere. */
  private Path programsWithBroken(String... files) throws Exception {
    Path programs = dir.resolve("programs");
    copy(BPF, programs);
    for (String file : files) {
      Path broken = programs.resolve(file);
      Files.writeString(broken, Files.readString(broken).replace("args->skaddr", "args->no_such_field")
          .replace("args->rx_sk", "args->no_such_field"));
    }
    return programs;
  }

  /** This kernel's format files with {@code field} taken out of {@code event}'s. */
  private Path formatsWithout(String event, String field) throws Exception {
    Path formats = dir.resolve("formats");
    for (String e : List.of("skb/kfree_skb", "sock/inet_sock_set_state", "tcp/tcp_retransmit_synack", "tcp/tcp_send_reset",
        "syscalls/sys_enter_listen", "syscalls/sys_exit_listen", "syscalls/sys_exit_accept", "syscalls/sys_exit_accept4")) {
      Path target = formats.resolve(e).resolve("format");
      Files.createDirectories(target.getParent());
      String text = Files.readString(TracepointFormats.ofThisKernel().directory().resolve(e).resolve("format"));
      if (e.equals(event)) {
        text = text.lines().filter(l -> !l.matches(".*field:.*\\b" + field + ";.*")).reduce("", (a, b) -> a + b + "\n");
      }
      Files.writeString(target, text);
    }
    return formats;
  }

  @Test
  void doctorSaysWhichConcernsRunAndWhyOneCannot() throws Exception {
    // handshakes has no other program; drops has variants, and the next that fits runs in its place.
    Path programs = programsWithBroken("handshakes.bt", "drops.bt");
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    int exit = BacklogAgent.execute(new PrintWriter(out), new PrintWriter(err), "doctor", "--programs", programs.toString());
    assertThat(exit).as(err.toString()).isEqualTo(ExitCode.OK);
    List<String> concerns = out.toString().lines().filter(l -> l.startsWith("concern ")).toList();
    assertThat(concerns).hasSize(8).contains("concern listen: runs (listen.bt)", "concern states: off (not asked for)");
    assertThat(concerns).anySatisfy(l -> assertThat(l)
        .startsWith("concern drops: degraded, runs drops-no-rx-sk.bt: no rx_sk in kfree_skb")
        .contains("(drops.bt does not attach: ").contains("no_such_field"));
    assertThat(concerns).anySatisfy(l -> assertThat(l)
        .startsWith("concern handshakes: cannot: handshakes.bt does not attach: ").contains("no_such_field"));
    assertThat(concerns).anySatisfy(l -> assertThat(l).startsWith("concern syn_refused: cannot: needs the kprobe tier"));

    StringWriter json = new StringWriter();
    exit = BacklogAgent.execute(new PrintWriter(json), new PrintWriter(err), "doctor", "--json", "--states",
        "--programs", programs.toString());
    assertThat(exit).isEqualTo(ExitCode.OK);
    JsonNode doc = JSON.readTree(json.toString());
    assertThat(doc.path("bpftrace").path("version").asText()).startsWith("v0.");
    JsonNode handshakes = find(doc.path("concerns"), "handshakes");
    assertThat(handshakes.path("state").asText()).isEqualTo("cannot");
    assertThat(handshakes.path("detail").asText()).contains("no_such_field");
    assertThat(find(doc.path("concerns"), "states").path("state").asText()).isEqualTo("runs");
    assertThat(find(doc.path("concerns"), "listen").path("program").asText()).isEqualTo("listen.bt");
  }

  @Test
  void traceHeadsItsOutputWithBpftracesVersionAndOneLinePerConcern() throws Exception {
    Path programs = programsWithBroken("synack.bt");
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    int exit = BacklogAgent.execute(new PrintWriter(out), new PrintWriter(err), "trace", "--duration", "2",
        "--programs", programs.toString(), "--state", dir.resolve("state.json").toString());
    assertThat(exit).as(err.toString()).isZero();
    List<String> lines = err.toString().lines().toList();
    assertThat(lines).anySatisfy(l -> assertThat(l).matches("bpftrace: v0\\.\\d+.*"));
    assertThat(lines).contains("concern listen: runs (listen.bt)", "concern resets: runs (resets.bt)");
    assertThat(lines).anySatisfy(l -> assertThat(l).startsWith("concern synack: cannot: synack.bt does not attach: "));
  }

  @Test
  void runReportsAVariantChosenForAMissingFieldAndExportsEachConcernAsAGauge() throws Exception {
    // A kernel whose kfree_skb has no rx_sk (before 6.12): drops runs as drops-no-rx-sk.bt, here for real.
    Path formats = formatsWithout("skb/kfree_skb", "rx_sk");
    int prometheus = DaemonProcess.freePort();
    Path config = DaemonProcess.config(dir, """
        interval: 1s
        state_file: %s
        exporters: {prometheus: {port: %d}}
        """.formatted(dir.resolve("state.json"), prometheus));
    try (DaemonProcess daemon = DaemonProcess.start(Map.of(TracepointFormats.OVERRIDE_ENVIRONMENT, formats.toString()),
        "--config", config.toString())) {
      daemon.awaitStarted();
      String drops = daemon.awaitLine(l -> l.startsWith("concern drops:"), Duration.ofSeconds(10));
      assertThat(drops).startsWith("concern drops: degraded, runs drops-no-rx-sk.bt: no rx_sk in kfree_skb");
      daemon.awaitLine(l -> l.equals("concern listen: runs (listen.bt)"), Duration.ofSeconds(5));
      daemon.awaitLine(l -> l.startsWith("bpftrace: v0."), Duration.ofSeconds(5));
      assertThat(daemon.stdout()).noneMatch(l -> l.startsWith("concern") && l.contains("cannot:") && !l.startsWith("concern syn_refused"));

      String scrape = scrapeWith(prometheus, "backlog_agent_concern_running");
      assertThat(value(scrape, Map.of("backlog_agent_concern", "drops", "backlog_agent_concern_program", "drops-no-rx-sk.bt",
          "backlog_agent_concern_state", "degraded"))).isEqualTo(1);
      assertThat(value(scrape, Map.of("backlog_agent_concern", "listen", "backlog_agent_concern_program", "listen.bt",
          "backlog_agent_concern_state", "runs"))).isEqualTo(1);
      assertThat(value(scrape, Map.of("backlog_agent_concern", "syn_refused", "backlog_agent_concern_state", "cannot")))
          .isEqualTo(0);
    }
  }

  private static String scrapeWith(int port, String metric) throws Exception {
    String scrape = "";
    long deadline = System.nanoTime() + Duration.ofSeconds(15).toNanos();
    while (System.nanoTime() < deadline) {
      scrape = DaemonProcess.scrape(port);
      if (scrape.contains(metric + "{")) {
        return scrape;
      }
      Thread.sleep(300);
    }
    throw new AssertionError("no " + metric + " in\n" + scrape);
  }

  private static double value(String scrape, Map<String, String> labels) {
    OptionalDouble v = PrometheusText.value(scrape, "backlog_agent_concern_running", labels);
    assertThat(v).as(labels + " in\n" + scrape).isPresent();
    return v.getAsDouble();
  }

  private static JsonNode find(JsonNode concerns, String name) {
    for (JsonNode c : concerns) {
      if (c.path("concern").asText().equals(name)) {
        return c;
      }
    }
    throw new AssertionError("no concern " + name + " in " + concerns);
  }

  private static void copy(Path from, Path to) throws Exception {
    try (Stream<Path> files = Files.walk(from)) {
      for (Path f : files.filter(p -> p.toString().endsWith(".bt")).toList()) {
        Path target = to.resolve(from.relativize(f).toString());
        Files.createDirectories(target.getParent());
        Files.copy(f, target);
      }
    }
  }
}
