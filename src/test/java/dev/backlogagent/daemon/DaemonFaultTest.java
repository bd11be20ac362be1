package dev.backlogagent.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import dev.backlogagent.testing.DaemonProcess;
import dev.backlogagent.testing.FakeBpftrace;
import dev.backlogagent.testing.KernelTests;
import dev.backlogagent.testing.PrometheusText;
import dev.backlogagent.testing.TestNetns;
import dev.backlogagent.testing.TestNetns.ListenerProcess;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a fault suite did to the daemon, replayed: a real daemon process under the launcher's heap
 * (-Xmx96m, exit on OOM), with a small script standing in for bpftrace that prints what the suite's
 * children printed, and real signals.
 */
class DaemonFaultTest {
  @TempDir Path dir;

  @BeforeAll
  static void root() {
    KernelTests.assumeKernel("the daemon under faults");
    KernelTests.requireCommand("python3");
  }

  private Path config(String bpftrace, String extra) throws Exception {
    return DaemonProcess.config(java.nio.file.Files.createDirectories(dir.resolve("etc")), """
        interval: 1s
        tier: tracepoint
        bpftrace: %s
        state_file: %s
        exporters: {prometheus: {port: %d}}
        %s
        """.formatted(bpftrace, dir.resolve("state.json"), DaemonProcess.freePort(), extra));
  }

  /** A python3 line printing one bpftrace map line of {@code keys} distinct listener keys. */
  private static String mapLine(int keys) {
    return "python3 -c 'import sys; sys.stdout.write(\"{\\\"type\\\": \\\"map\\\", \\\"data\\\": {\\\"@handshakes\\\": {\" + "
        + "\",\".join(\"\\\"4026531840,2,10.%d.%d.%d,80\\\": 1\" % (i >> 16, (i >> 8) & 255, i & 255) for i in range(" + keys
        + ")) + \"}}}\\n\")'\n";
  }

  @Test
  void linesTooLongToHoldAndMapsTooBigAreCountedAndSkippedAndTheDaemonLivesOn() throws Exception {
    Path fake = FakeBpftrace.write(dir.resolve("fake"), FakeBpftrace.ATTACHED
        + "head -c 33554432 /dev/zero | tr '\\0' x; echo\n"          // a 32 MiB line
        + mapLine(200_000)                                           // a 6.6 MB map line, 200,000 keys
        + mapLine(20_000)                                            // under 1 MiB, but more keys than a child can have
        + "echo '{\"type\": \"map\", \"data\": {\"@handshakes\": {\"1,2,10.0.0.1,80\": 12345678901234567890123456}}}'\n"
        + "printf '\\033[2J\\033]0;pwned\\007 hidden\\rbogus\\n'\n"   // terminal escapes in a garbage line
        + FakeBpftrace.HEARTBEATS);
    try (DaemonProcess daemon = DaemonProcess.start(Map.of(), "--config", config(fake.toString(), "").toString())) {
      daemon.awaitStarted();
      String summary = daemon.awaitLine(l -> l.contains("malformed 5"), Duration.ofSeconds(60));
      Thread.sleep(3000);
      assertThat(daemon.descendants()).as("the child lives on").isNotEmpty();
      List<String> err = daemon.stderr();
      assertThat(err).anyMatch(l -> l.contains("skipped a line of 33554432 bytes, over the limit of 1048576"));
      assertThat(err).anyMatch(l -> l.contains("map @handshakes has more than 16384 keys"));
      assertThat(err).anyMatch(l -> l.contains("not a 64-bit whole number: 12345678901234567890123456"));
      assertThat(err).anyMatch(l -> l.contains("\\e[2J\\e]0;pwned\\x07 hidden\\rbogus"));
      assertThat(String.join("\n", err)).doesNotContain("\u001b").doesNotContain("\r").doesNotContain("\u0007");
      assertThat(summary).contains("malformed 5");
      daemon.signal("TERM");
      assertThat(daemon.awaitExit(Duration.ofSeconds(10))).as(daemon.transcript()).isZero();
    }
  }

  @Test
  void parallelTrialChildrenPrintingHugeLinesDoNotExhaustTheHeap() throws Exception {
    // The combined program "cannot attach", so every concern is tried alone, all at once: each trial child
    // prints a 16 MiB line, then claims its probes.
    Path fake = FakeBpftrace.write(dir.resolve("fake"), """
        case "$5" in
          */combined-*) echo 'ERROR: the fake refuses combined programs' >&2; exit 1;;
        esac
        head -c 16777216 /dev/zero | tr '\\0' y; echo
        """ + FakeBpftrace.ATTACHED + FakeBpftrace.HEARTBEATS);
    try (DaemonProcess daemon = DaemonProcess.start(Map.of(), "--config", config(fake.toString(), "").toString())) {
      String started = daemon.awaitStarted();
      assertThat(started).contains("HANDSHAKES").contains("DROPS");
      daemon.awaitLine(l -> l.contains("events +"), Duration.ofSeconds(30));
      assertThat(daemon.stderr()).anyMatch(l -> l.contains("skipped a line of 16777216 bytes"));
      daemon.signal("TERM");
      assertThat(daemon.awaitExit(Duration.ofSeconds(15))).as(daemon.transcript()).isZero();
    }
  }

  @Test
  void aFrozenChildIsFoundByItsSilenceStoppedSoThatItsCountsArriveAndRestarted() throws Exception {
    KernelTests.requireCommand("ip");
    try (TestNetns ns = TestNetns.create()) {
      ListenerProcess server = ns.startListener("--backlog", "16");
      String key = ns.inode() + ",2,127.0.0.1," + server.port();
      // On SIGTERM, as bpftrace's END does, the child prints what its maps hold: 7 handshakes (the depth hist's counts).
      Path fake = FakeBpftrace.write(dir.resolve("fake"), "trap 'echo \"{\\\"type\\\": \\\"hist\\\", \\\"data\\\": "
          + "{\\\"@queue_depth\\\": {\\\"" + key + "\\\": [{\\\"min\\\": 0, \\\"max\\\": 0, \\\"count\\\": 7}]}}}\"; exit 0' TERM\n"
          + FakeBpftrace.ATTACHED + FakeBpftrace.HEARTBEATS);
      int prometheus = DaemonProcess.freePort();
      Path config = DaemonProcess.config(dir, """
          interval: 1s
          tier: tracepoint
          bpftrace: %s
          state_file: %s
          listeners: {netns: ["%d"]}
          exporters: {prometheus: {port: %d}}
          """.formatted(fake, dir.resolve("state.json"), ns.inode(), prometheus));
      try (DaemonProcess daemon = DaemonProcess.start(Map.of(), "--config", config.toString())) {
        daemon.awaitStarted();
        Thread.sleep(2000);
        long child = daemon.descendants().stream().filter(p -> ProcessHandle.of(p).flatMap(h -> h.info().command())
            .map(c -> c.endsWith("sh")).orElse(false)).findFirst().orElseThrow();
        TestNetns.run("kill", "-STOP", Long.toString(child));
        long stoppedAt = System.nanoTime();
        String warning = awaitStderr(daemon, l -> l.contains("printed nothing for 10 s (process state T (stopped))"),
            Duration.ofSeconds(30));
        assertThat(Duration.ofNanos(System.nanoTime() - stoppedAt)).isLessThan(Duration.ofSeconds(15));
        assertThat(warning).contains("frozen");
        // Its END print arrived: the handshakes it held are counted on the listener.
        Map<String, String> listener = Map.of("network_local_port", Integer.toString(server.port()));
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        double handshakes = -1;
        while (System.nanoTime() < deadline && handshakes < 7) {
          Thread.sleep(500);
          handshakes = PrometheusText.value(DaemonProcess.scrape(prometheus), "tcp_listen_handshakes_total", listener).orElse(-1);
        }
        assertThat(handshakes).as(daemon.transcript()).isEqualTo(7.0);
        // And it was restarted: a new child runs, and the restart is counted.
        daemon.awaitLine(l -> l.contains("events +"), Duration.ofSeconds(10));
        long restartDeadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (System.nanoTime() < restartDeadline && !daemon.descendants().stream().anyMatch(p -> p != child
            && ProcessHandle.of(p).flatMap(h -> h.info().command()).map(c -> c.endsWith("sh")).orElse(false))) {
          Thread.sleep(200);
        }
        assertThat(ProcessHandle.of(child).map(ProcessHandle::isAlive).orElse(false)).isFalse();
        assertThat(PrometheusText.value(DaemonProcess.scrape(prometheus), "backlog_agent_child_restarts_total", Map.of())
            .orElse(-1)).isGreaterThanOrEqualTo(1.0);
        daemon.signal("TERM");
        assertThat(daemon.awaitExit(Duration.ofSeconds(10))).as(daemon.transcript()).isZero();
      }
    }
  }

  @Test
  void aChildKilledMidIntervalKeepsTheCountsItHadFlushed() throws Exception {
    KernelTests.requireCommand("ip");
    KernelTests.requireCommand("bpftrace");
    try (TestNetns ns = TestNetns.create()) {
      ListenerProcess server = ns.startListener("--backlog", "512", "--connect-later");
      int prometheus = DaemonProcess.freePort();
      Path config = DaemonProcess.config(dir, """
          interval: 10s
          state_file: %s
          listeners: {netns: ["%d"]}
          exporters: {prometheus: {port: %d}}
          """.formatted(dir.resolve("state.json"), ns.inode(), prometheus));
      try (DaemonProcess daemon = DaemonProcess.start(Map.of(), "--config", config.toString())) {
        daemon.awaitStarted();
        long bpftrace = daemon.descendants().stream().filter(p -> ProcessHandle.of(p).flatMap(h -> h.info().command())
            .map(c -> c.endsWith("bpftrace")).orElse(false)).findFirst().orElseThrow();
        server.connect(200); // 200 handshakes, in the middle of a 10 s interval
        Thread.sleep(2500);  // more than a flush period, less than the interval
        TestNetns.run("kill", "-KILL", Long.toString(bpftrace));
        String warning = awaitStderr(daemon, l -> l.contains("was killed (SIGKILL)"), Duration.ofSeconds(10));
        assertThat(warning).contains("at most 1 s, is lost");
        Map<String, String> listener = Map.of("network_local_port", Integer.toString(server.port()));
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        double handshakes = -1;
        while (System.nanoTime() < deadline && handshakes < 200) {
          Thread.sleep(1000);
          handshakes = PrometheusText.value(DaemonProcess.scrape(prometheus), "tcp_listen_handshakes_total", listener).orElse(-1);
        }
        assertThat(handshakes).as("handshakes counted although the child died before the interval closed; "
            + daemon.transcript()).isEqualTo(200.0);
        daemon.signal("TERM");
        assertThat(daemon.awaitExit(Duration.ofSeconds(10))).isZero();
      }
    }
  }

  private static String awaitStderr(DaemonProcess daemon, java.util.function.Predicate<String> matches, Duration timeout)
      throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (System.nanoTime() < deadline) {
      for (String line : daemon.stderr()) {
        if (matches.test(line)) {
          return line;
        }
      }
      Thread.sleep(200);
    }
    throw new AssertionError("no matching stderr line within " + timeout + "; " + daemon.transcript());
  }
}
