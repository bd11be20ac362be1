package dev.backlogagent.export;

import static org.assertj.core.api.Assertions.assertThat;

import dev.backlogagent.decode.AddressFamily;
import dev.backlogagent.decode.BpftraceRecord;
import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.diagnosis.AcceptPace;
import dev.backlogagent.diagnosis.Finding;
import dev.backlogagent.listener.IntervalReport;
import dev.backlogagent.listener.Inventory;
import dev.backlogagent.listener.Listener;
import dev.backlogagent.listener.ListenerFlag;
import dev.backlogagent.listener.ListenerInterval;
import dev.backlogagent.listener.NetNamespace;
import dev.backlogagent.listener.Trouble;
import dev.backlogagent.procfs.ListenCounters;
import dev.backlogagent.procfs.NamespaceSysctls;
import dev.backlogagent.procfs.ProcessIdentity;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.sdk.metrics.SdkMeterProvider;
import io.opentelemetry.sdk.metrics.data.AggregationTemporality;
import io.opentelemetry.sdk.metrics.data.HistogramPointData;
import io.opentelemetry.sdk.metrics.data.MetricData;
import io.opentelemetry.sdk.testing.exporter.InMemoryMetricReader;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The listener book's cap and freshness, and the finding as series, without a kernel (DaemonFreshMetricsTest has it for real). */
class ListenerBookTest {
  private static final long NETNS = 4026532177L;
  private static final NetNamespace NS = new NetNamespace(NETNS, null, new NamespaceSysctls(4096, 2048, 1, 0),
      new ListenCounters(0, 0, 0, 0, 0, 0, 0));
  private static final Instant T0 = Instant.parse("2026-12-01T09:00:00Z");

  private static Listener listener(int port, long queue, long backlog, int pid, ListenerFlag... flags) {
    return new Listener(new ListenerKey(NETNS, AddressFamily.IPV4, "127.0.0.1", port), queue, backlog, null, 0,
        List.of(new ProcessIdentity(pid, "python3", "python3", null)), flags.length == 0 ? Set.of() : Set.of(flags), port);
  }

  private static IntervalReport interval(int second, List<Listener> listeners, ListenerInterval... active) {
    Inventory inventory = new Inventory(List.of(NS), listeners, T0.plusSeconds(second), List.of());
    return new IntervalReport(T0.plusSeconds(second), Duration.ofSeconds(1), inventory, Map.of(), List.of(active), Map.of(),
        Map.of(), List.of());
  }

  private static ListenerInterval stalled(Listener l, long drops) {
    return new ListenerInterval(l, l.key(), drops, 0, 4, 0, 0, Map.of(), Map.of(),
        List.of(), List.of(), List.of(new Finding(Trouble.ACCEPT_QUEUE_OVERFLOW, drops, AcceptPace.STALLED, 0, false)));
  }

  private static List<Integer> ports(ListenerBook book) {
    return book.lastRows().stream().map(r -> r.identity().key().port()).toList();
  }

  @Test
  void overTheCapTheListenerThatStartsDroppingTakesTheQuietOnesPlace() {
    ListenerBook book = new ListenerBook();
    Listener quiet = listener(80, 0, 128, 10);
    Listener later = listener(81, 0, 4, 11);
    book.update(interval(1, List.of(quiet, later)), ListenerFilter.all(), 1);
    assertThat(ports(book)).containsExactly(80);
    assertThat(book.leftOut()).isEqualTo(1);

    Listener full = listener(81, 5, 4, 11, ListenerFlag.FULL);
    book.update(interval(2, List.of(quiet, full), stalled(full, 35)), ListenerFilter.all(), 1);
    assertThat(ports(book)).containsExactly(81);
    ListenerBook.Row row = book.lastRows().get(0);
    assertThat(row.drops()).isEqualTo(35);
    assertThat(row.overflows()).isEqualTo(35);
    assertThat(row.flags()).containsExactlyInAnyOrder(ListenerFlag.FULL, ListenerFlag.DROPPING);
    assertThat(row.troubles()).containsExactly(Trouble.ACCEPT_QUEUE_OVERFLOW);
    assertThat(row.stalled()).isTrue();
    assertThat(book.leftOut()).as("the quiet one, left out once").isEqualTo(2);
  }

  @Test
  void aFreshInventoryMovesTheGaugesAndAddsNewListenersBetweenIntervals() throws Exception {
    ListenerBook book = new ListenerBook();
    Listener web = listener(80, 0, 128, 10);
    book.update(interval(1, List.of(web)), ListenerFilter.all(), 10);
    List<Inventory> reads = new ArrayList<>();
    book.readFrom(() -> {
      Inventory now = new Inventory(List.of(NS), List.of(listener(80, 7, 128, 10), listener(82, 0, 16, 12)),
          Instant.now(), List.of());
      reads.add(now);
      return now;
    }, Duration.ofMillis(100));
    Thread.sleep(150);
    assertThat(book.rows()).extracting(r -> r.identity().key().port() + ":" + r.queue()).containsExactly("80:7", "82:0");
    assertThat(book.rows()).hasSize(2);
    assertThat(reads).as("one read per period, not one per callback").hasSize(1);
  }

  /** The daemon's metrics over a book, read as an exporter reads them (histograms from the book's producer). */
  private record Exported(ListenerBook book, InMemoryMetricReader reader, BacklogMetrics metrics) {
    static Exported of(ListenerBook book) {
      InMemoryMetricReader reader = InMemoryMetricReader.create();
      SdkMeterProvider provider = SdkMeterProvider.builder().registerMetricReader(reader)
          .registerMetricProducer(new ListenerHistograms(book)).build();
      return new Exported(book, reader, new BacklogMetrics(provider.get("test"), book,
          () -> new AgentStatus(0, 0, 0, 0, "tracepoint", Map.of(), Map.of(), List.of())));
    }

    List<MetricData> collect() {
      return new ArrayList<>(reader.collectAllMetrics());
    }

    /** The histogram's points by port, none when the metric is absent. */
    Map<Long, HistogramPointData> histogram(String name) {
      Map<Long, HistogramPointData> byPort = new java.util.TreeMap<>();
      collect().stream().filter(m -> m.getName().equals(name)).forEach(m -> m.getHistogramData().getPoints()
          .forEach(p -> byPort.put(p.getAttributes().get(ListenerIdentity.LOCAL_PORT), p)));
      return byPort;
    }
  }

  private static ListenerInterval handshakes(Listener l, List<BpftraceRecord.Bucket> depths, List<BpftraceRecord.Bucket> waits) {
    return new ListenerInterval(l, l.key(), 0, 5, 4, 0, 0, Map.of(), Map.of(), waits, depths, List.of());
  }

  @Test
  void theFlagsAndTheTroubleAreZeroOrOneSeriesAndHistogramsCarryNoProcess() {
    Exported exported = Exported.of(new ListenerBook());
    Listener full = listener(81, 5, 4, 11, ListenerFlag.FULL);
    ListenerInterval li = new ListenerInterval(full, new ListenerKey(NETNS, AddressFamily.IPV4, "127.0.0.1", 81), 35, 5, 4, 0, 0, Map.of(),
        Map.of(), List.of(), List.of(new BpftraceRecord.Bucket(4, 7, 5)),
        List.of(new Finding(Trouble.ACCEPT_QUEUE_OVERFLOW, 35, AcceptPace.STALLED, 0, false)));
    exported.book().update(interval(1, List.of(full), li), ListenerFilter.all(), 10);
    List<MetricData> data = exported.collect();

    MetricData flag = data.stream().filter(m -> m.getName().equals("tcp.listen.flag")).findFirst().orElseThrow();
    assertThat(flag.getLongGaugeData().getPoints()).hasSize(ListenerFlag.values().length).allSatisfy(p -> {
      String f = p.getAttributes().get(AttributeKey.stringKey("tcp.listen.flag"));
      assertThat(p.getValue()).as(f).isEqualTo(f.equals("full") || f.equals("dropping") ? 1 : 0);
    });
    MetricData trouble = data.stream().filter(m -> m.getName().equals("tcp.listen.trouble")).findFirst().orElseThrow();
    assertThat(trouble.getLongGaugeData().getPoints()).hasSize(Trouble.values().length).allSatisfy(p -> {
      String k = p.getAttributes().get(AttributeKey.stringKey("tcp.listen.trouble.kind"));
      assertThat(p.getValue()).as(k).isEqualTo(k.equals("accept_queue") ? 1 : 0);
    });
    MetricData depth = data.stream().filter(m -> m.getName().equals("tcp.listen.queue.depth")).findFirst().orElseThrow();
    assertThat(depth.getUnit()).isEqualTo("{connection}");
    assertThat(depth.getHistogramData().getAggregationTemporality()).isEqualTo(AggregationTemporality.CUMULATIVE);
    assertThat(depth.getHistogramData().getPoints()).singleElement().satisfies(p -> {
      assertThat(p.getCount()).isEqualTo(5);
      assertThat(p.getAttributes().get(ListenerIdentity.PID)).isNull();
      assertThat(p.getAttributes().get(ListenerIdentity.LOCAL_PORT)).isEqualTo(81);
    });
    assertThat(data).noneMatch(m -> m.getName().equals("tcp.listen.accept.wait")).as("no accept seen, no series");
    exported.metrics().close();
  }

  @Test
  void theKernelsBucketsAddUpAtTheirUpperOrMiddleValueAsTheSdksOwnHistogramWouldCountThem() {
    Exported exported = Exported.of(new ListenerBook());
    Listener web = listener(80, 0, 128, 10);
    // Depths: 3 handshakes found the queue empty ([0,0]), 5 found 4 to 7 ahead: counted at 7, in (4, 8].
    // Waits: 2 accepts after 256-511 µs (at 384 µs, in (256 µs, 512 µs]), 1 after 1-2 s (1.5 s).
    ListenerInterval li = handshakes(web, List.of(new BpftraceRecord.Bucket(0, 0, 3), new BpftraceRecord.Bucket(4, 7, 5)),
        List.of(new BpftraceRecord.Bucket(256, 511, 2), new BpftraceRecord.Bucket(1 << 20, (1 << 21) - 1, 1)));
    exported.book().update(interval(1, List.of(web), li), ListenerFilter.all(), 10);
    exported.book().update(interval(2, List.of(web), li), ListenerFilter.all(), 10);

    HistogramPointData depth = exported.histogram("tcp.listen.queue.depth").get(80L);
    assertThat(depth.getBoundaries()).startsWith(0.0, 1.0, 2.0, 4.0, 8.0).endsWith(65536.0);
    assertThat(depth.getCounts()).startsWith(6L, 0L, 0L, 0L, 10L).hasSize(depth.getBoundaries().size() + 1);
    assertThat(depth.getCount()).as("cumulative over both intervals").isEqualTo(16);
    assertThat(depth.getSum()).isEqualTo(70.0);
    assertThat(depth.getMin()).isEqualTo(0.0);
    assertThat(depth.getMax()).isEqualTo(7.0);
    HistogramPointData wait = exported.histogram("tcp.listen.accept.wait").get(80L);
    assertThat(wait.getBoundaries()).hasSize(28).startsWith(0.0, 1e-6).endsWith((1 << 26) / 1e6);
    int at384us = wait.getBoundaries().indexOf(512e-6);
    int at1500ms = wait.getBoundaries().indexOf((1 << 21) / 1e6);
    assertThat(wait.getCounts().get(at384us)).isEqualTo(4);
    assertThat(wait.getCounts().get(at1500ms)).isEqualTo(2);
    assertThat(wait.getCount()).isEqualTo(6);
    assertThat(wait.getSum()).isCloseTo(4 * 384e-6 + 2 * ((1 << 20) + (1 << 21)) / 2.0 / 1e6, org.assertj.core.data.Offset.offset(1e-9));
  }

  @Test
  void aListenerThatClosesTakesItsHistogramSeriesAlongAndTheOthersStay() {
    Exported exported = Exported.of(new ListenerBook());
    Listener web = listener(80, 0, 128, 10);
    Listener api = listener(81, 0, 128, 11);
    List<BpftraceRecord.Bucket> depths = List.of(new BpftraceRecord.Bucket(0, 0, 5));
    List<BpftraceRecord.Bucket> waits = List.of(new BpftraceRecord.Bucket(1 << 17, (1 << 18) - 1, 5));
    exported.book().update(interval(1, List.of(web, api), handshakes(web, depths, waits), handshakes(api, depths, waits)),
        ListenerFilter.all(), 10);
    assertThat(exported.histogram("tcp.listen.queue.depth")).containsOnlyKeys(80L, 81L);
    assertThat(exported.histogram("tcp.listen.accept.wait")).containsOnlyKeys(80L, 81L);

    // web closes: the next inventory (between intervals) no longer has it.
    exported.book().refresh(new Inventory(List.of(NS), List.of(api), T0.plusMillis(1500), List.of()));
    assertThat(exported.histogram("tcp.listen.queue.depth")).containsOnlyKeys(81L);
    assertThat(exported.histogram("tcp.listen.accept.wait")).containsOnlyKeys(81L);
    assertThat(exported.histogram("tcp.listen.queue.depth").get(81L).getCount()).as("the other's totals are kept").isEqualTo(5);

    // And the last one: the metric itself goes, rather than staying with no point.
    exported.book().update(interval(2, List.of()), ListenerFilter.all(), 10);
    assertThat(exported.collect()).noneMatch(m -> m.getName().startsWith("tcp.listen.queue.depth")
        || m.getName().startsWith("tcp.listen.accept.wait"));
  }
}
