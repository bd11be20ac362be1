package dev.backlogagent.export;

import dev.backlogagent.listener.IntervalReport;
import dev.backlogagent.listener.Inventory;
import dev.backlogagent.listener.Listener;
import dev.backlogagent.listener.ListenerInterval;
import dev.backlogagent.listener.NetNamespace;
import dev.backlogagent.listener.Trouble;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * The running totals behind the daemon's metrics, kept outside the OpenTelemetry SDK so that they
 * survive a reload that rebuilds the SDK, and so that a listener that goes away stops being reported
 * (the SDK keeps every series of a synchronous counter forever). Updated once per interval on the
 * daemon's thread; read by metric callbacks on the exporters' threads through immutable snapshots.
 *
 * <p>Cardinality is bounded: at most {@code max} listeners are admitted, worst first at the start and in
 * order of appearance after; those left out are counted once each.
 */
public final class ListenerBook {
  /** One exported listener's numbers: gauges as of the last inventory, counters since it was admitted. */
  public record Row(ListenerIdentity identity, long queue, long backlog, Long requestedBacklog,
      long drops, long overflows, long handshakes, long synackRetransmits) {}

  /** What one interval added, for the histograms (which are recorded as they come). */
  public record Added(ListenerIdentity identity, ListenerInterval interval) {}

  private static final class Totals {
    long drops;
    long overflows;
    long handshakes;
    long synack;
  }

  private final Set<ListenerIdentity> admitted = new LinkedHashSet<>();
  private final Set<ListenerIdentity> leftOut = new LinkedHashSet<>();
  private final Map<ListenerIdentity, Totals> totals = new HashMap<>();
  private final Map<String, Long> transitions = new TreeMap<>();
  private long leftOutCount;
  private volatile List<Row> rows = List.of();
  private volatile List<NetNamespace> namespaces = List.of();
  private volatile Map<String, Long> transitionTotals = Map.of();

  /** Takes one interval; returns, per admitted listener with activity, what to record in histograms. */
  public synchronized List<Added> update(IntervalReport report, ListenerFilter filter, int max) {
    Inventory inventory = report.inventory();
    // Worst first, so that the cap, when it bites at the start, leaves out the quiet listeners.
    Map<ListenerIdentity, Listener> present = new LinkedHashMap<>();
    List<Listener> worstFirst = new ArrayList<>(inventory.listeners());
    worstFirst.sort(Inventory.WORST_FIRST);
    for (Listener l : worstFirst) {
      if (filter.admits(l, inventory)) {
        present.putIfAbsent(ListenerIdentity.of(l), l);
      }
    }
    admitted.retainAll(present.keySet());
    leftOut.retainAll(present.keySet());
    totals.keySet().retainAll(present.keySet());
    for (ListenerIdentity id : present.keySet()) {
      if (admitted.contains(id)) {
        continue;
      }
      if (admitted.size() < max) {
        admitted.add(id);
        leftOut.remove(id);
      } else if (leftOut.add(id)) {
        leftOutCount++;
      }
    }

    List<Added> added = new ArrayList<>();
    for (ListenerInterval li : report.listeners()) {
      if (li.listener() == null) {
        continue;
      }
      ListenerIdentity id = ListenerIdentity.of(li.listener());
      if (!admitted.contains(id)) {
        continue;
      }
      Totals t = totals.computeIfAbsent(id, k -> new Totals());
      t.drops += li.drops();
      t.overflows += overflows(li);
      t.handshakes += li.handshakes();
      t.synack += li.synackRetransmits();
      added.add(new Added(id, li));
    }
    report.stateTransitions().forEach((fromTo, n) -> transitions.merge(fromTo, n, Long::sum));

    List<Row> next = new ArrayList<>(admitted.size());
    for (ListenerIdentity id : admitted) {
      Listener l = present.get(id);
      Totals t = totals.getOrDefault(id, new Totals());
      next.add(new Row(id, l.queue(), l.backlog(), l.requestedBacklog(), t.drops, t.overflows, t.handshakes, t.synack));
    }
    rows = List.copyOf(next);
    namespaces = inventory.namespaces().stream().filter(filter::admitsNamespace).toList();
    transitionTotals = Map.copyOf(transitions);
    return added;
  }

  /**
   * Drops that met a full accept queue: the part of the interval's sk_drops rise that the diagnosis found
   * to be accept-queue overflows (sk_drops counts every drop at the listener, so it is the one count that
   * every tier has).
   */
  static long overflows(ListenerInterval li) {
    return li.count(Trouble.ACCEPT_QUEUE_OVERFLOW);
  }

  public List<Row> rows() {
    return rows;
  }

  public List<NetNamespace> namespaces() {
    return namespaces;
  }

  /** Cumulative state transitions, keyed "FROM>TO" by state number. */
  public Map<String, Long> transitions() {
    return transitionTotals;
  }

  /** Listeners the cap left out, each counted once while it lasts. */
  public synchronized long leftOut() {
    return leftOutCount;
  }
}
