package dev.backlogagent.bcc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.backlogagent.decode.AddressFamily;
import dev.backlogagent.decode.BpftraceRecord;
import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.decode.TraceEvent;
import dev.backlogagent.listener.Inventory;
import dev.backlogagent.listener.Listener;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/** tcpsynbl's histograms (recorded in the Debian 12 guest) given to the listeners of an inventory. */
class SynBacklogDepthsTest {
  private static final long A = 4026532301L;
  private static final long B = 4026532302L;
  private static final ListenerKey OVERFLOWING = new ListenerKey(A, AddressFamily.IPV4, "127.0.0.1", 8080);
  private static final ListenerKey BUSY = new ListenerKey(A, AddressFamily.IPV4, "127.0.0.1", 8081);
  private static final ListenerKey OTHER_128 = new ListenerKey(B, AddressFamily.IPV4, "0.0.0.0", 9090);

  private static Listener listener(ListenerKey k, long backlog) {
    return new Listener(k, 0, backlog, null, 0, List.of(), Set.of(), k.netns() + k.port());
  }

  private static Inventory inventory(Listener... listeners) {
    return new Inventory(List.of(), List.of(listeners), Instant.EPOCH, List.of());
  }

  private static List<TraceEvent> feed(SynBacklogDepths depths) throws Exception {
    List<TraceEvent> events = new ArrayList<>();
    try (InputStream in = SynBacklogDepthsTest.class.getResourceAsStream("/libbpf-tools/tcpsynbl-0.26-debian12-6.1.txt")) {
      for (String line : new String(in.readAllBytes(), StandardCharsets.UTF_8).lines().toList()) {
        events.addAll(depths.line(line));
      }
    }
    return events;
  }

  /** Per listener: the depth buckets summed (low end to count) and the largest peak. */
  private record Seen(Map<Long, Long> buckets, long peak) {}

  private static Map<ListenerKey, Seen> byListener(List<TraceEvent> events) {
    Map<ListenerKey, Map<Long, Long>> buckets = new TreeMap<>(java.util.Comparator.comparing(ListenerKey::toString));
    Map<ListenerKey, Long> peaks = new java.util.HashMap<>();
    for (TraceEvent e : events) {
      if (e instanceof TraceEvent.ListenerHistogram h && h.what() == TraceEvent.Histogrammed.QUEUE_DEPTH) {
        for (BpftraceRecord.Bucket b : h.buckets()) {
          buckets.computeIfAbsent(h.key(), k -> new TreeMap<>()).merge(b.min(), b.count(), Long::sum);
        }
      } else if (e instanceof TraceEvent.ListenerCount c && c.what() == TraceEvent.Counted.QUEUE_PEAK) {
        peaks.merge(c.key(), c.value(), Math::max);
      }
    }
    Map<ListenerKey, Seen> out = new java.util.HashMap<>();
    buckets.forEach((k, b) -> out.put(k, new Seen(b, peaks.getOrDefault(k, -1L))));
    return out;
  }

  @Test
  void eachLimitsOnlyListenerGetsItsHistogramAndAPeakAtLeastItsTopSlot() throws Exception {
    SynBacklogDepths depths = new SynBacklogDepths(() -> inventory(listener(OVERFLOWING, 4), listener(BUSY, 128)), () -> null);
    Map<ListenerKey, Seen> seen = byListener(feed(depths));
    // Backlog 4, never accepting: five handshakes found 0..4 waiting; the last found the queue at its limit, so
    // it then held 5 = limit + 1, as ss's Recv-Q showed.
    assertThat(seen.get(OVERFLOWING)).isEqualTo(new Seen(Map.of(0L, 2L, 2L, 2L, 4L, 1L), 4));
    assertThat(seen.get(BUSY).buckets().values().stream().mapToLong(Long::longValue).sum()).isEqualTo(100);
    assertThat(seen.get(BUSY).peak()).isEqualTo(64); // 99 at most, 64 at least: the slot's low end, no more claimed
    assertThat(depths.samples()).isEqualTo(105);
    assertThat(depths.unattributed()).isZero();
  }

  @Test
  void aLimitTwoListenersShareGoesToTheOneThatTookHandshakesElseToNobody() throws Exception {
    Inventory two = inventory(listener(OVERFLOWING, 4), listener(BUSY, 128), listener(OTHER_128, 128));
    SynBacklogDepths nobody = new SynBacklogDepths(() -> two, () -> two);
    assertThat(byListener(feed(nobody))).containsOnlyKeys(OVERFLOWING);
    assertThat(nobody.unattributed()).isEqualTo(100);

    SynBacklogDepths told = new SynBacklogDepths(() -> two, () -> two);
    told.handshake(new ListenerKey(A, AddressFamily.IPV4, "127.0.0.1", 8081));
    told.nextInterval(); // a handshake of the interval before still counts
    assertThat(byListener(feed(told))).containsOnlyKeys(OVERFLOWING, BUSY);
    told.nextInterval();
    told.nextInterval();
    assertThat(byListener(feed(told))).containsOnlyKeys(OVERFLOWING);
  }

  @Test
  void aListenerBornSinceTheLatestInventoryIsFoundInOneReadNow() throws Exception {
    java.util.concurrent.atomic.AtomicInteger reads = new java.util.concurrent.atomic.AtomicInteger();
    SynBacklogDepths depths = new SynBacklogDepths(() -> inventory(listener(BUSY, 128)), () -> {
      reads.incrementAndGet();
      return inventory(listener(OVERFLOWING, 4), listener(BUSY, 128));
    });
    assertThat(byListener(feed(depths))).containsOnlyKeys(OVERFLOWING, BUSY);
    assertThat(reads).hasValue(1); // only for the limit the latest inventory did not have
  }

  @Test
  void aBucketBeforeAnyLimitIsMalformedAndTheNextLimitStartsAfresh() throws Exception {
    SynBacklogDepths depths = new SynBacklogDepths(() -> inventory(listener(OVERFLOWING, 4)), () -> null);
    assertThatThrownBy(() -> depths.line("         0 -> 1          : 2        |****|"))
        .isInstanceOf(ToolLines.MalformedLine.class).hasMessageContaining("before any backlog_max");
    assertThat(depths.line("backlog_max = 4")).isEmpty();
    assertThat(depths.line("         0 -> 1          : 2        |****|")).hasSize(2);
    assertThat(depths.line("")).isEmpty();
    assertThatThrownBy(() -> depths.line("         0 -> 1          : 2        |****|"))
        .isInstanceOf(ToolLines.MalformedLine.class);
  }
}
