package dev.backlogagent.listener;

import dev.backlogagent.decode.BpftraceRecord;
import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.diagnosis.Finding;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What happened at one listener during one interval, joined to the inventory.
 *
 * @param listener the listener as the inventory saw it at the interval's end; null when the events name a
 *     listener the inventory does not have (it closed, or the scope left it out)
 * @param key how the events named it
 * @param drops the rise of the listener's sk_drops over the interval (what ss's d column gained)
 * @param peakQueue the largest accept-queue length seen at a handshake, or -1 when no handshake was seen
 * @param accepts connections accepted in the interval, -1 when accepts are not observed
 * @param dropsByReason packets freed at the listener, by kernel drop reason name
 * @param refusedByKind refused SYNs/ACKs by kind (accept, syn, cookie) — kprobe tier only
 * @param acceptWaitMicros accept-queue waits in the interval
 * @param queueDepths the accept-queue length at each handshake in the interval
 * @param findings what the diagnosis found ({@link dev.backlogagent.diagnosis.Diagnosis}); each drop is in
 *     exactly one finding, so the drop findings add up to {@code drops}
 */
public record ListenerInterval(
    Listener listener,
    ListenerKey key,
    long drops,
    long handshakes,
    long peakQueue,
    long synackRetransmits,
    long accepts,
    Map<String, Long> dropsByReason,
    Map<String, Long> refusedByKind,
    List<BpftraceRecord.Bucket> acceptWaitMicros,
    List<BpftraceRecord.Bucket> queueDepths,
    List<Finding> findings) {

  /** The kinds of trouble found. */
  public Set<Trouble> troubles() {
    Set<Trouble> kinds = EnumSet.noneOf(Trouble.class);
    findings.forEach(f -> kinds.add(f.trouble()));
    return kinds;
  }

  /** How many of this kind were found (0 when none). */
  public long count(Trouble trouble) {
    return findings.stream().filter(f -> f.trouble() == trouble).mapToLong(Finding::count).sum();
  }

  /** A percentile of the accept waits in microseconds (upper bound of its bucket), or -1 without waits. */
  public long acceptWaitPercentile(double p) {
    long total = acceptWaitMicros.stream().mapToLong(BpftraceRecord.Bucket::count).sum();
    if (total == 0) {
      return -1;
    }
    long rank = (long) Math.ceil(p * total);
    long seen = 0;
    for (BpftraceRecord.Bucket b : acceptWaitMicros) {
      seen += b.count();
      if (seen >= rank) {
        return b.max();
      }
    }
    return acceptWaitMicros.get(acceptWaitMicros.size() - 1).max();
  }
}
