package dev.backlogagent.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import dev.backlogagent.testing.DaemonProcess;
import dev.backlogagent.testing.KernelTests;
import dev.backlogagent.testing.Nstat;
import dev.backlogagent.testing.PrometheusServer;
import dev.backlogagent.testing.PrometheusText;
import dev.backlogagent.testing.TestNetns;
import dev.backlogagent.testing.TestNetns.ListenerProcess;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `backlog-agent run` end to end: a real daemon process, real listeners, real overflows, real signals. */
class DaemonTest {
  @TempDir Path dir;

  @BeforeAll
  static void kernel() {
    KernelTests.assumeKernel("the daemon end to end");
    KernelTests.requireCommand("ip");
    KernelTests.requireCommand("python3");
  }

  /** A config for the test's namespace only; {@code extra} may replace the listeners section. */
  private String config(TestNetns ns, int prometheusPort, String extra) throws Exception {
    String listeners = extra.startsWith("listeners:") ? "" : "listeners: {netns: [\"" + ns.inode() + "\"]}";
    return DaemonProcess.config(dir, """
        interval: 1s
        state_file: %s
        %s
        incidents: {quiet_period: 2s}
        exporters: {prometheus: {port: %d}}
        %s
        """.formatted(dir.resolve("state.json"), listeners, prometheusPort, extra)).toString();
  }

  @Test
  void thePrometheusEndpointCountsAnAcceptQueueOverflowOnItsListenerAsSsAndNstatDo() throws Exception {
    try (TestNetns ns = TestNetns.create()) {
      int prometheus = DaemonProcess.freePort();
      try (DaemonProcess daemon = DaemonProcess.start(Map.of(), "--config", config(ns, prometheus, ""))) {
        daemon.awaitStarted();
        Nstat before = ns.nstat();
        ListenerProcess server = ns.startListener("--backlog", "4", "--connect", "40", "--close-after", "2.5");
        Thread.sleep(4000); // the clients' SYN retries end once they close
        long ssDrops = ns.ss().port(server.port()).drops();
        long overflows = ns.nstat().get("TcpExtListenOverflows") - before.get("TcpExtListenOverflows");
        Map<String, String> listener = Map.of("network_local_port", Integer.toString(server.port()),
            "network_local_address", "127.0.0.1", "process_pid", Long.toString(server.pid()),
            "process_executable_name", "python3", "netns_inode", Long.toString(ns.inode()),
            "network_transport", "tcp", "network_type", "ipv4");
        String scrape = awaitValue(prometheus, "tcp_listen_drops_total", listener, ssDrops);
        assertThat(ssDrops).isPositive().isEqualTo(overflows);
        assertThat(value(scrape, "tcp_listen_overflows_total", listener)).isEqualTo(ssDrops);
        assertThat(value(scrape, "tcp_listen_queue_size", listener)).isEqualTo(5);
        assertThat(value(scrape, "tcp_listen_queue_limit", listener)).isEqualTo(4);
        assertThat(value(scrape, "tcp_listen_backlog_requested", listener)).isEqualTo(4);
        assertThat(value(scrape, "tcp_listen_handshakes_total", listener)).isEqualTo(5);
        // Histograms are keyed by the endpoint alone (no process: a restarted server keeps its series).
        Map<String, String> endpoint = new java.util.HashMap<>(listener);
        endpoint.remove("process_pid");
        endpoint.remove("process_executable_name");
        assertThat(value(scrape, "tcp_listen_queue_depth_count", endpoint)).isEqualTo(5);
        assertThat(value(scrape, "tcp_ext_listen_overflows_total", Map.of("netns_inode", Long.toString(ns.inode()))))
            .isEqualTo(ns.nstat().get("TcpExtListenOverflows"));
        assertThat(value(scrape, "net_core_somaxconn", Map.of("netns_inode", Long.toString(ns.inode()))))
            .isEqualTo(Long.parseLong(ns.exec("sysctl", "-n", "net.core.somaxconn").strip()));
        assertThat(value(scrape, "backlog_agent_tier", Map.of("backlog_agent_tier", "tracepoint"))).isEqualTo(1);
        assertThat(value(scrape, "backlog_agent_events_decoded_total", Map.of())).isPositive();
        // Only the test's namespace is exported: the filter holds.
        String inode = Long.toString(ns.inode());
        assertThat(scrape.lines().filter(l -> l.startsWith("tcp_listen_queue_limit{"))
            .allMatch(l -> l.contains("netns_inode=\"" + inode + "\""))).isTrue();
        // The summary line names the listener and the kind.
        daemon.awaitLine(l -> l.contains("dropping: python3[" + server.pid() + "] 127.0.0.1:" + server.port())
            && l.contains("accept queue"), Duration.ofSeconds(5));
      }
    }
  }

  /** Debian's prometheus server scrapes the daemon; its query API returns the overflow counter for the right port. */
  @Test
  void aPrometheusServerScrapesTheOverflowCounterOfTheRightPort() throws Exception {
    try (TestNetns ns = TestNetns.create()) {
      int port = DaemonProcess.freePort();
      try (DaemonProcess daemon = DaemonProcess.start(Map.of(), "--config", config(ns, port, ""));
           PrometheusServer prometheus = PrometheusServer.start(port)) {
        daemon.awaitStarted();
        ListenerProcess server = ns.startListener("--backlog", "4", "--connect", "40", "--close-after", "2.5");
        ListenerProcess quiet = ns.startListener("--backlog", "64");
        Thread.sleep(4000);
        long ssDrops = ns.ss().port(server.port()).drops();
        assertThat(ssDrops).isPositive();
        List<PrometheusServer.Sample> result = prometheus.awaitQuery(
            "tcp_listen_overflows_total{netns_inode=\"" + ns.inode() + "\"}",
            r -> r.stream().anyMatch(s -> s.value() == ssDrops), Duration.ofSeconds(30));
        assertThat(result).filteredOn(s -> s.value() > 0).singleElement().satisfies(s -> {
          assertThat(s.labels()).containsEntry("network_local_port", Integer.toString(server.port()))
              .containsEntry("process_pid", Long.toString(server.pid()))
              .containsEntry("instance", prometheus.target());
          assertThat(s.value()).isEqualTo(ssDrops);
        });
        assertThat(result).anySatisfy(s -> {
          assertThat(s.labels()).containsEntry("network_local_port", Integer.toString(quiet.port()));
          assertThat(s.value()).isZero();
        });
      }
    }
  }

  /** listeners.max caps the listeners exported; what the cap leaves out is counted, and a port filter holds. */
  @Test
  void theListenerCapAndFiltersBoundWhatIsExported() throws Exception {
    try (TestNetns ns = TestNetns.create()) {
      int prometheus = DaemonProcess.freePort();
      ListenerProcess a = ns.startListener("--backlog", "8");
      ListenerProcess b = ns.startListener("--backlog", "8");
      ListenerProcess c = ns.startListener("--backlog", "8");
      String extra = "listeners: {netns: [\"%d\"], ports: [%d, %d], max: 1}".formatted(ns.inode(), a.port(), b.port());
      try (DaemonProcess daemon = DaemonProcess.start(Map.of(), "--config", config(ns, prometheus, extra))) {
        daemon.awaitStarted();
        daemon.awaitLine(l -> l.startsWith("2 listeners in") && l.contains("(1 exported, 1 over the cap)"), Duration.ofSeconds(10));
        String scrape = DaemonProcess.scrape(prometheus);
        List<String> series = scrape.lines().filter(l -> l.startsWith("tcp_listen_queue_limit{")).toList();
        assertThat(series).singleElement().asString()
            .matches(l -> l.contains("network_local_port=\"" + a.port() + "\"") || l.contains("network_local_port=\"" + b.port() + "\""));
        assertThat(scrape).doesNotContain("network_local_port=\"" + c.port() + "\"");
        assertThat(value(scrape, "backlog_agent_listeners_left_out_total", Map.of())).isEqualTo(1);
      }
    }
  }

  @Test
  void sigtermStopsTheChildrenAndExitsZeroWithinFiveSecondsAndSigkillLeavesNoChild() throws Exception {
    try (TestNetns ns = TestNetns.create()) {
      try (DaemonProcess daemon = DaemonProcess.start(Map.of(), "--config", config(ns, DaemonProcess.freePort(), ""))) {
        daemon.awaitStarted();
        List<Long> children = daemon.descendants();
        assertThat(children).as("bpftrace children").isNotEmpty();
        long t0 = System.nanoTime();
        daemon.signal("TERM");
        assertThat(daemon.awaitExit(Duration.ofSeconds(10))).as(daemon.transcript()).isZero();
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(5));
        assertThat(daemon.stdout()).contains("stopped");
        awaitGone(children);
      }
      try (DaemonProcess daemon = DaemonProcess.start(Map.of(), "--config", config(ns, DaemonProcess.freePort(), ""))) {
        daemon.awaitStarted();
        List<Long> children = daemon.descendants();
        assertThat(children).isNotEmpty();
        daemon.signal("KILL");
        daemon.awaitExit(Duration.ofSeconds(5));
        awaitGone(children); // --pdeathsig KILL: the kernel kills them with the JVM
      }
    }
  }

  @Test
  void sighupReloadsTheConfigAndABadReloadKeepsTheRunningOne() throws Exception {
    try (TestNetns ns = TestNetns.create()) {
      int prometheus = DaemonProcess.freePort();
      Path file = Path.of(config(ns, prometheus, ""));
      try (DaemonProcess daemon = DaemonProcess.start(Map.of(), "--config", file.toString())) {
        daemon.awaitStarted();
        int moved = DaemonProcess.freePort();
        config(ns, moved, "states: false");
        daemon.signal("HUP");
        daemon.awaitLine(l -> l.startsWith("configuration reloaded") && l.contains("Prometheus on 127.0.0.1:" + moved)
            && !l.contains("STATES"), Duration.ofSeconds(60));
        assertThat(DaemonProcess.scrape(moved)).contains("backlog_agent_tier");

        config(ns, moved, "tier: fast");
        daemon.signal("HUP");
        Thread.sleep(2000);
        assertThat(daemon.stderr()).anyMatch(l -> l.contains("reload refused, keeping the running configuration")
            && l.contains("key 'tier': 'fast' is not one of auto, kprobe, tracepoint, libbpf-tools, ftrace, counters"));
        assertThat(DaemonProcess.scrape(moved)).contains("backlog_agent_tier");
        daemon.signal("TERM");
        assertThat(daemon.awaitExit(Duration.ofSeconds(10))).isZero();
      }
    }
  }

  @Test
  void aBadConfigurationIsRefusedAtStartWithOneLineAndExit2() throws Exception {
    Path file = DaemonProcess.config(dir, "listeners: {max: 0}\n");
    try (DaemonProcess daemon = DaemonProcess.start(Map.of(), "--config", file.toString())) {
      assertThat(daemon.awaitExit(Duration.ofSeconds(30))).isEqualTo(2);
      Thread.sleep(200);
      assertThat(daemon.stderr()).containsExactly(
          "backlog-agent: " + file + ": key 'listeners.max': must be between 1 and 750 (what the agent's heap can export; see docs/hardening.md), got 0");
    }
    // A bad OTEL_* value is a bad configuration too; a Prometheus port in use is the host's problem (exit 1).
    Path good = DaemonProcess.config(dir, "state_file: " + dir.resolve("s.json") + "\n");
    try (DaemonProcess daemon = DaemonProcess.start(Map.of("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1",
        "OTEL_EXPORTER_OTLP_PROTOCOL", "thrift"), "--config", good.toString())) {
      assertThat(daemon.awaitExit(Duration.ofSeconds(30))).isEqualTo(2);
      Thread.sleep(200);
      assertThat(daemon.stderr()).containsExactly("backlog-agent: OpenTelemetry: Unsupported OTLP metrics protocol: thrift");
    }
    try (java.net.ServerSocket busy = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      Path taken = DaemonProcess.config(dir, "state_file: " + dir.resolve("s.json") + "\nexporters: {prometheus: {port: "
          + busy.getLocalPort() + "}}\n");
      try (DaemonProcess daemon = DaemonProcess.start(Map.of(), "--config", taken.toString())) {
        assertThat(daemon.awaitExit(Duration.ofSeconds(30))).isEqualTo(1);
        Thread.sleep(200);
        assertThat(daemon.stderr()).containsExactly("backlog-agent: the Prometheus endpoint 127.0.0.1:" + busy.getLocalPort()
            + " cannot listen: Address already in use");
      }
    }
    Path open = DaemonProcess.config(dir, "interval: 2s\n");
    java.nio.file.Files.setPosixFilePermissions(open, java.nio.file.attribute.PosixFilePermissions.fromString("rw-rw-rw-"));
    if (KernelTests.effectiveUid() == 0) {
      try (DaemonProcess daemon = DaemonProcess.start(Map.of(), "--config", open.toString())) {
        assertThat(daemon.awaitExit(Duration.ofSeconds(30))).isEqualTo(2);
        Thread.sleep(200);
        assertThat(daemon.stderr()).singleElement().asString().contains("is writable by group or others");
      }
    }
  }

  @Test
  void checkValidatesAndAttachesThenExits() throws Exception {
    Path file = DaemonProcess.config(dir, "interval: 2s\nstate_file: " + dir.resolve("s.json") + "\n");
    try (DaemonProcess daemon = DaemonProcess.start(Map.of(), "--config", file.toString(), "--check")) {
      assertThat(daemon.awaitExit(Duration.ofSeconds(90))).as(daemon.transcript()).isZero();
      Thread.sleep(200);
      assertThat(daemon.stdout()).anyMatch(l -> l.startsWith("tier tracepoint") && l.contains("LISTEN"))
          .contains("check passed");
    }
  }

  private static String awaitValue(int port, String metric, Map<String, String> labels, long expected) throws Exception {
    String scrape = "";
    long deadline = System.nanoTime() + Duration.ofSeconds(15).toNanos();
    while (System.nanoTime() < deadline) {
      scrape = DaemonProcess.scrape(port);
      OptionalDouble v = PrometheusText.value(scrape, metric, labels);
      if (v.isPresent() && v.getAsDouble() == expected) {
        return scrape;
      }
      Thread.sleep(500);
    }
    throw new AssertionError(metric + labels + " never reached " + expected + "; last scrape:\n" + scrape);
  }

  private static double value(String scrape, String metric, Map<String, String> labels) {
    OptionalDouble v = PrometheusText.value(scrape, metric, labels);
    assertThat(v).as(metric + labels + " in\n" + scrape).isPresent();
    return v.getAsDouble();
  }

  private static void awaitGone(List<Long> pids) throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
    while (System.nanoTime() < deadline && pids.stream().anyMatch(p -> ProcessHandle.of(p).map(ProcessHandle::isAlive).orElse(false))) {
      Thread.sleep(100);
    }
    assertThat(pids.stream().filter(p -> ProcessHandle.of(p).map(ProcessHandle::isAlive).orElse(false)).toList())
        .as("children still alive").isEmpty();
  }
}
