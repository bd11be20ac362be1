package dev.backlogagent.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import dev.backlogagent.testing.DaemonProcess;
import dev.backlogagent.testing.KernelTests;
import dev.backlogagent.testing.Nstat;
import dev.backlogagent.testing.OtlpReceiver;
import dev.backlogagent.testing.PrometheusText;
import dev.backlogagent.testing.TestNetns;
import dev.backlogagent.testing.TestNetns.ListenerProcess;
import io.opentelemetry.proto.trace.v1.Span;
import io.opentelemetry.proto.trace.v1.Status;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The daemon's OTLP export end to end: a real OTLP receiver (the official protobuf definitions, over gRPC
 * and over HTTP/protobuf) receives the metrics and the incident span of a real accept-queue overflow, with
 * the listener's attributes and numbers that match ss and nstat.
 */
class DaemonOtlpTest {
  @TempDir Path dir;

  @BeforeAll
  static void kernel() {
    KernelTests.assumeKernel("the daemon's OTLP export end to end");
    KernelTests.requireCommand("ip");
    KernelTests.requireCommand("python3");
  }

  private Path config(TestNetns ns, String extra) throws Exception {
    return DaemonProcess.config(dir, """
        interval: 1s
        state_file: %s
        listeners: {netns: ["%d"]}
        incidents: {quiet_period: 2s, slow_accept: 200ms}
        exporters: {prometheus: {port: %d}}
        %s
        """.formatted(dir.resolve("state.json"), ns.inode(), DaemonProcess.freePort(), extra));
  }

  private static Map<String, String> environment(OtlpReceiver receiver) {
    Map<String, String> env = new HashMap<>(receiver.exporterEnvironment());
    env.put("OTEL_METRIC_EXPORT_INTERVAL", "1000");
    env.put("OTEL_BSP_SCHEDULE_DELAY", "200");
    env.put("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test");
    env.put("OTEL_EXPORTER_OTLP_HEADERS", "x-backlog-test=yes");
    return env;
  }

  @ParameterizedTest
  @EnumSource(OtlpReceiver.Protocol.class)
  void anAcceptQueueOverflowArrivesAsMetricsAndAnIncidentSpan(OtlpReceiver.Protocol protocol) throws Exception {
    try (OtlpReceiver receiver = OtlpReceiver.start(protocol); TestNetns ns = TestNetns.create()) {
      try (DaemonProcess daemon = DaemonProcess.start(environment(receiver), "--config", config(ns, "").toString())) {
        assertThat(daemon.awaitStarted()).contains("OTLP " + protocol.otelName() + " to " + receiver.endpoint());
        Nstat before = ns.nstat();
        ListenerProcess server = ns.startListener("--backlog", "4", "--connect", "40", "--close-after", "2.5");
        Thread.sleep(4000);
        long ssDrops = ns.ss().port(server.port()).drops();
        long overflows = ns.nstat().get("TcpExtListenOverflows") - before.get("TcpExtListenOverflows");
        assertThat(ssDrops).isPositive().isEqualTo(overflows);
        Map<String, Object> listener = Map.of("network.local.port", server.port(), "network.local.address", "127.0.0.1",
            "process.pid", server.pid(), "process.executable.name", "python3", "netns.inode", ns.inode(),
            "network.transport", "tcp", "network.type", "ipv4");

        receiver.await("tcp.listen.drops = " + ssDrops, Duration.ofSeconds(20),
            r -> r.sum("tcp.listen.drops", listener).filter(v -> v == ssDrops));
        OtlpReceiver.Received got = receiver.received();
        assertThat(got.sum("tcp.listen.overflows", listener)).contains((double) ssDrops);
        assertThat(got.sum("tcp.listen.handshakes", listener)).contains(5.0);
        assertThat(got.gauge("tcp.listen.queue.limit", listener)).contains(4.0);
        assertThat(got.gauge("tcp.listen.backlog.requested", listener)).contains(4.0);
        // Histograms are keyed by the endpoint alone (no process: a restarted server keeps its series).
        Map<String, Object> endpoint = Map.of("network.local.port", server.port(), "network.local.address", "127.0.0.1",
            "netns.inode", ns.inode(), "network.transport", "tcp", "network.type", "ipv4");
        assertThat(got.histogram("tcp.listen.queue.depth", endpoint)).hasValueSatisfying(h -> {
          assertThat(h.getCount()).isEqualTo(5);
          assertThat(OtlpReceiver.Received.attributes(h.getAttributesList())).doesNotContainKey("process.pid");
        });
        assertThat(got.sum("tcp.ext.listen_overflows", Map.of("netns.inode", ns.inode())))
            .contains((double) ns.nstat().get("TcpExtListenOverflows"));
        assertThat(got.resourceAttributes()).containsEntry("service.name", "backlog-agent")
            .containsEntry("deployment.environment.name", "test").containsKey("host.name");
        assertThat(got.headers()).anySatisfy(h -> assertThat(h).containsEntry("x-backlog-test", "yes"));

        // The incident ends 2 s (the quiet period) after the last drop; its span carries the whole story.
        Span span = receiver.await("an overflow incident span", Duration.ofSeconds(20),
            r -> r.spans("tcp.listen.overflow").stream()
                .filter(s -> OtlpReceiver.Received.attributes(s.getAttributesList()).get("network.local.port")
                    .equals((long) server.port()))
                .findFirst());
        Map<String, Object> a = OtlpReceiver.Received.attributes(span.getAttributesList());
        assertThat(a).containsEntry("process.pid", server.pid()).containsEntry("process.executable.name", "python3")
            .containsEntry("netns.inode", ns.inode())
            .containsEntry("tcp.listen.drops", ssDrops)
            .containsEntry("tcp.listen.queue.limit", 4L)
            .containsEntry("tcp.listen.backlog.requested", 4L)
            .containsEntry("tcp.listen.queue.peak", 5L)
            .containsEntry("net.core.somaxconn", Long.parseLong(ns.exec("sysctl", "-n", "net.core.somaxconn").strip()))
            .containsEntry("net.ipv4.tcp_max_syn_backlog", Long.parseLong(ns.exec("sysctl", "-n", "net.ipv4.tcp_max_syn_backlog").strip()))
            .containsEntry("net.ipv4.tcp_syncookies", Long.parseLong(ns.exec("sysctl", "-n", "net.ipv4.tcp_syncookies").strip()))
            .containsEntry("net.ipv4.tcp_abort_on_overflow", 0L)
            .containsEntry("tcp.listen.overflow.kind", List.of("accept_queue"));
        assertThat((String) a.get("backlog_agent.diagnosis"))
            .startsWith("python3[" + server.pid() + "] 127.0.0.1:" + server.port() + ": accept queue full 5/4 — " + ssDrops
                + " SYNs and third ACKs dropped in ")
            .contains("the application accepted no connection in"); // the fixture never accepts: stalled
        assertThat(span.getStatus().getCode()).isEqualTo(Status.StatusCode.STATUS_CODE_ERROR);
        long eventDrops = span.getEventsList().stream().filter(e -> e.getName().equals("drops"))
            .mapToLong(e -> (Long) OtlpReceiver.Received.attributes(e.getAttributesList()).get("tcp.listen.drops")).sum();
        assertThat(eventDrops).isEqualTo(ssDrops);
        assertThat(span.getEndTimeUnixNano()).isGreaterThan(span.getStartTimeUnixNano());
        assertThat(span.getEndTimeUnixNano() - span.getStartTimeUnixNano()).isLessThan(Duration.ofSeconds(15).toNanos());
      }
    }
  }

  @Test
  void aSlowAcceptBecomesASpanFromHandshakeToAccept() throws Exception {
    try (OtlpReceiver receiver = OtlpReceiver.start(OtlpReceiver.Protocol.GRPC); TestNetns ns = TestNetns.create()) {
      try (DaemonProcess daemon = DaemonProcess.start(environment(receiver), "--config", config(ns, "").toString())) {
        daemon.awaitStarted();
        ListenerProcess server = ns.startListener("--backlog", "16", "--connect", "4", "--accept-every", "0.3");
        Span span = receiver.await("a slow-accept span", Duration.ofSeconds(20),
            r -> r.spans("tcp.accept.slow").stream().findFirst());
        Map<String, Object> a = OtlpReceiver.Received.attributes(span.getAttributesList());
        // Named by the listener (bound to 127.0.0.1 here), with the accepting process.
        assertThat(a).containsEntry("network.local.port", (long) server.port()).containsEntry("process.pid", server.pid())
            .containsEntry("network.local.address", "127.0.0.1")
            .containsEntry("tcp.listen.queue.limit", 16L);
        double wait = (Double) a.get("tcp.listen.accept.wait");
        assertThat(wait).isBetween(0.2, 1.6);
        // The span is the wait itself: from the handshake to accept().
        assertThat((span.getEndTimeUnixNano() - span.getStartTimeUnixNano()) / 1e9).isCloseTo(wait, org.assertj.core.data.Offset.offset(0.002));
        long nowNanos = System.currentTimeMillis() * 1_000_000L;
        assertThat(nowNanos - span.getEndTimeUnixNano()).isBetween(0L, Duration.ofSeconds(20).toNanos());
      }
    }
  }

  /**
   * The collector is down while an overflow happens, then comes up: the daemon keeps running, its memory
   * stays bounded, and the cumulative counters it then sends hold everything counted meanwhile.
   */
  @Test
  void aCollectorThatIsDownForAWhileGetsTheRightTotalsWhenItComesUp() throws Exception {
    try (OtlpReceiver receiver = OtlpReceiver.start(OtlpReceiver.Protocol.GRPC); TestNetns ns = TestNetns.create()) {
      receiver.goDown(OtlpReceiver.Outage.REFUSE_CONNECTIONS);
      int prometheus = DaemonProcess.freePort();
      Path config = DaemonProcess.config(dir, """
          interval: 1s
          state_file: %s
          listeners: {netns: ["%d"]}
          exporters: {prometheus: {port: %d}}
          """.formatted(dir.resolve("state.json"), ns.inode(), prometheus));
      try (DaemonProcess daemon = DaemonProcess.start(environment(receiver), "--config", config.toString())) {
        daemon.awaitStarted();
        long rssStart = DaemonProcess.rssKb(daemon.pid());
        ListenerProcess server = ns.startListener("--backlog", "4", "--connect", "40", "--close-after", "2.5");
        Thread.sleep(12_000); // a dozen export periods, failing
        long ssDrops = ns.ss().port(server.port()).drops();
        assertThat(ssDrops).isPositive();
        String scrape = DaemonProcess.scrape(prometheus);
        assertThat(PrometheusText.value(scrape, "backlog_agent_export_failures_total", Map.of("backlog_agent_signal", "metrics"))
            .orElse(0)).isPositive(); // each failed export has retried with backoff first
        assertThat(receiver.received().metricsRequests()).isEmpty();
        long rssDown = DaemonProcess.rssKb(daemon.pid());
        assertThat(daemon.stderr()).filteredOn(l -> l.contains("OTLP metrics export failed")).hasSize(1);

        receiver.comeUp();
        Map<String, Object> listener = Map.of("network.local.port", server.port(), "process.pid", server.pid());
        receiver.await("tcp.listen.drops = " + ssDrops + " after the outage", Duration.ofSeconds(30),
            r -> r.sum("tcp.listen.drops", listener).filter(v -> v == ssDrops));
        assertThat(receiver.received().sum("tcp.listen.overflows", listener)).contains((double) ssDrops);
        Thread.sleep(1500);
        assertThat(daemon.stderr()).anyMatch(l -> l.contains("OTLP metrics export works again"));
        assertThat(rssDown - rssStart).as("RSS growth while the collector was down, kB").isLessThan(30 * 1024);
        Optional<Double> lastSuccess = receiver.received().gauge("backlog_agent.export.last_success", Map.of("backlog_agent.signal", "metrics"));
        // The gauge is read before the export it describes succeeds: present once a second export went through.
        receiver.awaitThat("last_success reported", Duration.ofSeconds(10),
            r -> r.gauge("backlog_agent.export.last_success", Map.of("backlog_agent.signal", "metrics")).isPresent());
        assertThat(lastSuccess.orElse(null) == null || lastSuccess.get() > 1.7e9).isTrue();
        daemon.signal("TERM");
        assertThat(daemon.awaitExit(Duration.ofSeconds(10))).isZero();
      }
    }
  }
}
