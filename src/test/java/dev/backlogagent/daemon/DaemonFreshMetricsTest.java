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
import java.util.function.Predicate;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 10.7 end to end: a real daemon scraped over HTTP. Listener series appear within 3 s, gauges are
 * about a second old whatever the interval, the cap keeps the listener in trouble, the finding is a series,
 * a restarted server leaves no histogram series behind, and neither does one that closes for good.
 */
class DaemonFreshMetricsTest {
  @TempDir Path dir;

  @BeforeAll
  static void kernel() {
    KernelTests.assumeKernel("fresh Prometheus metrics end to end");
    KernelTests.requireCommand("ip");
    KernelTests.requireCommand("python3");
  }

  private String config(String yaml) throws Exception {
    return DaemonProcess.config(dir, "state_file: " + dir.resolve("state.json") + "\n" + yaml).toString();
  }

  /** Scrapes until {@code ready} holds; returns that scrape and how long it took. */
  private static String awaitScrape(int port, Predicate<String> ready, Duration timeout, long[] tookMillis) throws Exception {
    long start = System.nanoTime();
    String scrape = "";
    while (System.nanoTime() - start < timeout.toNanos()) {
      scrape = DaemonProcess.scrape(port);
      if (ready.test(scrape)) {
        tookMillis[0] = (System.nanoTime() - start) / 1_000_000;
        return scrape;
      }
      Thread.sleep(100);
    }
    throw new AssertionError("not ready after " + timeout + "; last scrape:\n" + scrape);
  }

  private static OptionalDouble value(String scrape, String metric, Map<String, String> labels) {
    return PrometheusText.value(scrape, metric, labels);
  }

  @Test
  void withATenSecondIntervalANewListenerHasSeriesWithinThreeSecondsAndItsQueueGaugeIsASecondOld() throws Exception {
    try (TestNetns ns = TestNetns.create()) {
      int prometheus = DaemonProcess.freePort();
      String inode = Long.toString(ns.inode());
      try (DaemonProcess daemon = DaemonProcess.start(Map.of(), "--config", config("""
          interval: 10s
          listeners: {netns: ["%s"]}
          exporters: {prometheus: {port: %d}}
          """.formatted(inode, prometheus)))) {
        daemon.awaitStarted();
        long[] took = {0};
        // The endpoint answers at once, with the namespace's listeners of the baseline (none yet).
        awaitScrape(prometheus, s -> s.contains("net_core_somaxconn{"), Duration.ofSeconds(3), took);
        ListenerProcess server = ns.startListener("--backlog", "16", "--connect-later");
        Map<String, String> listener = Map.of("network_local_port", Integer.toString(server.port()), "netns_inode", inode);
        String scrape = awaitScrape(prometheus, s -> value(s, "tcp_listen_queue_limit", listener).isPresent(),
            Duration.ofSeconds(3), took);
        assertThat(took[0]).as("ms until the new listener's series").isLessThan(3000);
        assertThat(value(scrape, "tcp_listen_queue_limit", listener)).hasValue(16);
        assertThat(value(scrape, "tcp_listen_queue_size", listener)).hasValue(0);
        // Three connections join the queue (never accepted): the gauge follows within about a second.
        server.connect(3);
        assertThat(ns.ss().port(server.port()).recvQ()).isEqualTo(3);
        awaitScrape(prometheus, s -> value(s, "tcp_listen_queue_size", listener).equals(OptionalDouble.of(3)),
            Duration.ofSeconds(3), took);
        assertThat(took[0]).as("ms until the queue gauge moved, with a 10 s interval").isLessThan(2000);
      }
    }
  }

  @Test
  void theCapKeepsTheListenerInTroubleTheFindingIsASeriesAndARestartLeavesNoHistogramSeries() throws Exception {
    try (TestNetns ns = TestNetns.create()) {
      int prometheus = DaemonProcess.freePort();
      String inode = Long.toString(ns.inode());
      ListenerProcess quiet = ns.startListener("--backlog", "64");
      try (DaemonProcess daemon = DaemonProcess.start(Map.of(), "--config", config("""
          interval: 1s
          listeners: {netns: ["%s"], max: 1}
          exporters: {prometheus: {port: %d}}
          """.formatted(inode, prometheus)))) {
        daemon.awaitStarted();
        long[] took = {0};
        Map<String, String> quietOne = Map.of("network_local_port", Integer.toString(quiet.port()));
        awaitScrape(prometheus, s -> value(s, "tcp_listen_queue_limit", quietOne).isPresent(), Duration.ofSeconds(3), took);

        // A second listener overflows (backlog 4, 40 connects, never accepts): over the cap of 1, it is the
        // one exported, with its flags and the diagnosis as series.
        ListenerProcess stuck = ns.startListener("--backlog", "4", "--connect", "40");
        String port = Integer.toString(stuck.port());
        Map<String, String> stuckOne = Map.of("network_local_port", port, "netns_inode", inode);
        // Stalled from its second interval with drops (the clients' SYN retry a second later): in the first,
        // the connections had only just come.
        String scrape = awaitScrape(prometheus,
            s -> value(s, "tcp_listen_trouble", with(stuckOne, "tcp_listen_trouble_kind", "accept_queue")).equals(OptionalDouble.of(1))
                && value(s, "tcp_listen_accept_stalled", stuckOne).equals(OptionalDouble.of(1)),
            Duration.ofSeconds(10), took);
        assertThat(value(scrape, "tcp_listen_queue_limit", quietOne)).as("the quiet listener gave way").isEmpty();
        assertThat(value(scrape, "tcp_listen_flag", with(stuckOne, "tcp_listen_flag", "full"))).hasValue(1);
        assertThat(value(scrape, "tcp_listen_flag", with(stuckOne, "tcp_listen_flag", "dropping"))).hasValue(1);
        assertThat(value(scrape, "tcp_listen_flag", with(stuckOne, "tcp_listen_flag", "truncated"))).hasValue(0);
        assertThat(value(scrape, "tcp_listen_trouble", with(stuckOne, "tcp_listen_trouble_kind", "syn_queue"))).hasValue(0);
        assertThat(value(scrape, "tcp_listen_accept_stalled", stuckOne)).as("it never accepts").hasValue(1);
        assertThat(value(scrape, "backlog_agent_listeners_left_out_total", Map.of())).hasValue(1);
        assertThat(ns.ss().port(stuck.port()).recvQ()).isEqualTo(5);

        // The server restarts on the same port (a new pid), and overflows again (so that the cap, which keeps
        // an exported quiet listener before a new quiet one, exports it): one histogram series for the
        // port, not one per pid.
        stuck.stop();
        ListenerProcess again = ns.startListener("--port", port, "--backlog", "4", "--connect", "40");
        assertThat(again.pid()).isNotEqualTo(stuck.pid());
        scrape = awaitScrape(prometheus,
            s -> value(s, "tcp_listen_queue_size", Map.of("network_local_port", port, "process_pid", Long.toString(again.pid())))
                .isPresent() && value(s, "tcp_listen_queue_depth_count", stuckOne).orElse(0) >= 10,
            Duration.ofSeconds(10), took);
        List<String> histogram = scrape.lines().filter(l -> l.startsWith("tcp_listen_queue_depth_count{")
            && l.contains("network_local_port=\"" + port + "\"")).toList();
        assertThat(histogram).singleElement().asString().doesNotContain("process_pid");
        assertThat(scrape.lines().filter(l -> l.startsWith("tcp_listen_queue_size{") && l.contains("process_pid=\"" + stuck.pid() + "\"")))
            .as("gauges of the old process").isEmpty();
      }
    }
  }

  @Test
  void aListenerThatClosesForGoodTakesItsHistogramSeriesOutOfPrometheusWhileAnotherKeepsItsOwn() throws Exception {
    try (TestNetns ns = TestNetns.create()) {
      int endpoint = DaemonProcess.freePort();
      String inode = Long.toString(ns.inode());
      // Two servers that accept one connection every 0.3 s: of four connections, each waits for those before it.
      ListenerProcess closing = ns.startListener("--backlog", "16", "--connect-later", "--accept-every", "0.3");
      ListenerProcess staying = ns.startListener("--backlog", "16", "--connect-later", "--accept-every", "0.3");
      try (DaemonProcess daemon = DaemonProcess.start(Map.of(), "--config", config("""
          interval: 1s
          listeners: {netns: ["%s"]}
          exporters: {prometheus: {port: %d}}
          """.formatted(inode, endpoint)));
          PrometheusServer prometheus = PrometheusServer.start(endpoint)) {
        daemon.awaitStarted();
        Nstat before = ns.nstat();
        closing.connect(4);
        staying.connect(4);
        String gone = "{network_local_port=\"" + closing.port() + "\", netns_inode=\"" + inode + "\"}";
        String kept = "{network_local_port=\"" + staying.port() + "\", netns_inode=\"" + inode + "\"}";

        // Prometheus has both listeners' histograms: four handshakes and four accepts each, as the kernel counts them.
        for (String listener : List.of(gone, kept)) {
          prometheus.awaitQuery("tcp_listen_queue_depth_count" + listener, s -> one(s) == 4, Duration.ofSeconds(30));
          prometheus.awaitQuery("tcp_listen_accept_wait_seconds_count" + listener, s -> one(s) == 4, Duration.ofSeconds(30));
        }
        assertThat(ns.nstat().get("TcpPassiveOpens") - before.get("TcpPassiveOpens")).as("handshakes in the namespace").isEqualTo(8);
        assertThat(ns.ss().port(closing.port()).recvQ()).as("all accepted").isZero();
        assertThat(ns.ss().port(staying.port()).recvQ()).isZero();
        // The last of them waited about 0.9 s: a slow accept, in the sum of the waits.
        assertThat(one(prometheus.query("tcp_listen_accept_wait_seconds_sum" + gone))).isGreaterThan(0.5);

        // One server closes for good. Within an interval or two the daemon's endpoint no longer has its
        // series, Prometheus marks them stale, and the other server's stay with their counts.
        closing.stop();
        assertThat(ns.ss().rows()).noneMatch(r -> r.port() == closing.port());
        for (String histogram : List.of("tcp_listen_queue_depth_count", "tcp_listen_accept_wait_seconds_count",
            "tcp_listen_accept_wait_seconds_bucket", "tcp_listen_queue_depth_bucket")) {
          prometheus.awaitQuery(histogram + gone, List::isEmpty, Duration.ofSeconds(15));
        }
        assertThat(one(prometheus.query("tcp_listen_queue_depth_count" + kept))).isEqualTo(4);
        assertThat(one(prometheus.query("tcp_listen_accept_wait_seconds_count" + kept))).isEqualTo(4);
        String port = "network_local_port=\"" + closing.port() + "\"";
        assertThat(DaemonProcess.scrape(endpoint).lines().filter(l -> l.contains(port)))
            .as("no series of the closed listener at all").isEmpty();
      }
    }
  }

  /** The value of a query's only sample, or NaN when it has none or several. */
  private static double one(List<PrometheusServer.Sample> samples) {
    return samples.size() == 1 ? samples.get(0).value() : Double.NaN;
  }

  private static Map<String, String> with(Map<String, String> labels, String key, String value) {
    Map<String, String> m = new java.util.HashMap<>(labels);
    m.put(key, value);
    return m;
  }
}
