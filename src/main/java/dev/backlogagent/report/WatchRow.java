package dev.backlogagent.report;

import dev.backlogagent.decode.AddressFamily;
import dev.backlogagent.listener.IntervalReport;
import dev.backlogagent.listener.Listener;
import dev.backlogagent.listener.ListenerFlag;
import dev.backlogagent.listener.ListenerInterval;
import dev.backlogagent.listener.NetNamespace;
import dev.backlogagent.diagnosis.Finding;
import dev.backlogagent.diagnosis.Sentences;
import dev.backlogagent.procfs.NamespaceSysctls;
import dev.backlogagent.procfs.ProcessIdentity;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One listener as `watch` shows it for one interval: where it is, who holds it, how full it is, what it
 * lost per second, and one sentence on its trouble.
 *
 * @param namespace the namespace's name under /run/netns, or its inode when it has none
 * @param process the first process holding the socket, comm[pid], with "+N" when N more hold it
 * @param requestedBacklog what the application passed to listen(), or null when no call was seen
 * @param acceptWaitP99Micros the 99th percentile of the interval's accept waits, or -1 without any
 * @param diagnosis one sentence on the listener's trouble, or "" when it has none
 */
public record WatchRow(
    long netns,
    String namespace,
    String address,
    int port,
    String process,
    long queue,
    long backlog,
    Long requestedBacklog,
    double dropsPerSecond,
    double synackRetransmitsPerSecond,
    long acceptWaitP99Micros,
    String diagnosis) {

  /** The kernel's own test (sk_acceptq_is_full): a connection arriving now is refused. */
  public boolean full() {
    return queue > backlog;
  }

  /** How full the accept queue is, 1.0 at the backlog. */
  public double fill() {
    if (backlog == 0) {
      return queue > 0 ? Double.POSITIVE_INFINITY : 0;
    }
    return (double) queue / backlog;
  }

  /** Worst first: full, then fuller queues, then more drops per second; ties by namespace, port, address. */
  public static final Comparator<WatchRow> WORST_FIRST =
      Comparator.comparing(WatchRow::full)
          .reversed()
          .thenComparing(Comparator.comparingDouble(WatchRow::fill).reversed())
          .thenComparing(Comparator.comparingDouble(WatchRow::dropsPerSecond).reversed())
          .thenComparingLong(WatchRow::netns)
          .thenComparingInt(WatchRow::port)
          .thenComparing(WatchRow::address);

  /** Every listener of the interval's inventory, joined to what happened at it, worst first. */
  public static List<WatchRow> of(IntervalReport report) {
    double seconds = Math.max(0.001, report.length().toMillis() / 1000.0);
    Map<Long, ListenerInterval> activity = new HashMap<>();
    for (ListenerInterval li : report.listeners()) {
      if (li.listener() != null) {
        activity.put(li.listener().socketInode(), li);
      }
    }
    List<WatchRow> rows = new ArrayList<>();
    for (Listener l : report.inventory().listeners()) {
      NetNamespace ns = report.inventory().namespace(l.key().netns()).orElse(null);
      ListenerInterval li = activity.get(l.socketInode());
      long drops = li == null ? 0 : li.drops();
      long synacks = li == null ? 0 : li.synackRetransmits();
      rows.add(new WatchRow(
          l.key().netns(),
          ns != null && ns.name() != null ? ns.name() : Long.toString(l.key().netns()),
          l.key().family() == AddressFamily.IPV6 ? "[" + l.key().address() + "]" : l.key().address(),
          l.key().port(),
          process(l.processes()),
          l.queue(),
          l.backlog(),
          l.requestedBacklog(),
          drops / seconds,
          synacks / seconds,
          li == null ? -1 : li.acceptWaitPercentile(0.99),
          diagnosis(l, ns == null ? null : ns.sysctls(), li == null ? List.of() : li.findings(), drops, synacks)));
    }
    rows.sort(WORST_FIRST);
    return rows;
  }

  private static String process(List<ProcessIdentity> processes) {
    if (processes.isEmpty()) {
      return "?";
    }
    ProcessIdentity p = processes.get(0);
    return p.comm() + "[" + p.pid() + "]" + (processes.size() > 1 ? "+" + (processes.size() - 1) : "");
  }

  /** The trouble of this interval first (in the diagnosis's words), then what the listener's state and flags say on their own. */
  static String diagnosis(Listener l, NamespaceSysctls s, List<Finding> findings, long drops, long synackRetransmits) {
    java.util.Optional<Finding> lead = Sentences.lead(findings);
    if (lead.isPresent()) {
      return Sentences.headline(lead.get(), l, s);
    }
    if (drops > 0) {
      return "dropping at the door; no queue was seen full";
    }
    if (l.full()) {
      return "accept queue full now: " + Sentences.backlogStory(l, s);
    }
    if (synackRetransmits > 0) {
      return "SYN-ACKs retransmitted: half-open connections wait for a final ACK";
    }
    if (l.flags().contains(ListenerFlag.TRUNCATED)) {
      return Sentences.backlogStory(l, s);
    }
    return "";
  }
}
