package dev.backlogagent.export;

import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.decode.StateTransition;
import dev.backlogagent.diagnosis.AcceptPace;
import dev.backlogagent.listener.IntervalReport;
import dev.backlogagent.listener.Inventory;
import dev.backlogagent.listener.Listener;
import dev.backlogagent.listener.ListenerFlag;
import dev.backlogagent.listener.ListenerInterval;
import dev.backlogagent.listener.NetNamespace;
import dev.backlogagent.listener.Trouble;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * The running totals behind the daemon's metrics, kept outside the OpenTelemetry SDK so that they
 * survive a reload that rebuilds the SDK, and so that a listener that goes away stops being reported
 * (the SDK keeps every series of a synchronous instrument forever). Counters and histograms are updated
 * once per interval on the daemon's thread; gauges (queue, limit, flags) from an inventory at most
 * {@code maxAge} old, read again when an exporter collects and the last one is older; callbacks and the
 * histograms' producer on the exporters' threads read immutable snapshots.
 *
 * <p>Cardinality is bounded: at most {@code max} listeners are admitted. Listeners in trouble (dropping in
 * the last interval, full, truncated) come first, then those already exported, then the rest worst
 * first; those left out are counted once each while they last.
 */
public final class ListenerBook {
  /**
   * One exported listener's numbers: gauges as of the last inventory, counters since it was admitted, and
   * the last interval's diagnosis.
   *
   * @param flags the inventory's flags, with {@link ListenerFlag#DROPPING} when the last interval dropped
   * @param troubles the kinds of trouble the last interval found
   * @param stalled whether the last interval found its accept queue full and no accept at all
   */
  public record Row(ListenerIdentity identity, long queue, long backlog, Long requestedBacklog,
      long drops, long overflows, long handshakes, long synackRetransmits, Set<ListenerFlag> flags,
      Set<Trouble> troubles, boolean stalled) {}

  /** Reads a fresh inventory for the gauges; may fail (then the last rows stay). */
  @FunctionalInterface
  public interface InventorySource {
    Inventory read() throws Exception;
  }

  private static final System.Logger LOG = System.getLogger(ListenerBook.class.getName());

  private static final class Totals {
    long drops;
    long overflows;
    long handshakes;
    long synack;
  }

  /** The last interval's verdict on one listener. */
  private record Verdict(Set<Trouble> troubles, boolean dropping, boolean stalled) {}

  private Set<ListenerIdentity> admitted = new LinkedHashSet<>();
  private final Set<ListenerIdentity> leftOut = new LinkedHashSet<>();
  private final Map<ListenerIdentity, Totals> totals = new HashMap<>();
  /**
   * By endpoint, not by identity: the histograms carry no process, so a server restarted between two
   * inventories continues its endpoint's series (ListenerIdentity#endpointAttributes).
   */
  private final Map<ListenerKey, ListenerHistograms.Endpoint> histograms = new HashMap<>();
  private Map<ListenerIdentity, Verdict> verdicts = Map.of();
  private final Map<StateTransition, Long> transitions = new HashMap<>();
  private long leftOutCount;
  private ListenerFilter filter = ListenerFilter.all();
  private int max = Integer.MAX_VALUE;
  private Instant inventoryTaken = Instant.EPOCH;
  private volatile InventorySource source;
  private volatile Duration maxAge = Duration.ofSeconds(1);
  private volatile long lastReadNanos = System.nanoTime();
  private volatile List<Row> rows = List.of();
  private volatile List<ListenerHistograms.Endpoint> histogramRows = List.of();
  private volatile List<NetNamespace> namespaces = List.of();
  private volatile Map<StateTransition, Long> transitionTotals = Map.of();

  /** Where fresh inventories come from when an exporter collects and the gauges are older than {@code age}. */
  public void readFrom(InventorySource inventories, Duration age) {
    this.maxAge = age;
    this.source = inventories;
  }

  /** Takes one interval: its counts and histograms for the admitted listeners, its verdicts, and the gauges. */
  public synchronized void update(IntervalReport report, ListenerFilter filter, int max) {
    this.filter = filter;
    this.max = max;
    Map<ListenerIdentity, Verdict> next = new HashMap<>();
    for (ListenerInterval li : report.listeners()) {
      if (li.listener() != null) {
        boolean stalled = li.findings().stream().anyMatch(f -> f.trouble() == Trouble.ACCEPT_QUEUE_OVERFLOW
            && f.pace() == AcceptPace.STALLED);
        next.put(ListenerIdentity.of(li.listener()), new Verdict(li.troubles(), li.drops() > 0, stalled));
      }
    }
    verdicts = Map.copyOf(next);
    Map<ListenerIdentity, Listener> present = admit(report.inventory());

    long now = TimeUnit.MILLISECONDS.toNanos(System.currentTimeMillis());
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
      if (!li.queueDepths().isEmpty() || !li.acceptWaitMicros().isEmpty()) {
        histograms.compute(id.key(), (k, before) -> ListenerHistograms.plus(before, id.endpointAttributes(), li, now));
      }
    }
    report.stateTransitions().forEach((fromTo, n) -> transitions.merge(fromTo, n, Long::sum));
    transitionTotals = Map.copyOf(transitions);
    publish(report.inventory(), present);
  }

  /**
   * Takes an inventory between intervals: the gauges and flags move, new listeners get series at once,
   * gone ones lose theirs; counters wait for the interval. An inventory older than the last one is ignored.
   */
  public synchronized void refresh(Inventory inventory, ListenerFilter filter, int max) {
    this.filter = filter;
    this.max = max;
    refresh(inventory);
  }

  /** As {@link #refresh(Inventory, ListenerFilter, int)} with the filter and cap of the last call. */
  public synchronized void refresh(Inventory inventory) {
    if (inventory.takenAt() != null && inventory.takenAt().isBefore(inventoryTaken)) {
      return;
    }
    publish(inventory, admit(inventory));
  }

  /** Admits listeners under the cap, in trouble first; returns the present ones by identity. */
  private Map<ListenerIdentity, Listener> admit(Inventory inventory) {
    Map<ListenerIdentity, Listener> present = new LinkedHashMap<>();
    List<Listener> worstFirst = new ArrayList<>(inventory.listeners());
    worstFirst.sort(Inventory.WORST_FIRST);
    for (Listener l : worstFirst) {
      if (filter.admits(l, inventory)) {
        present.putIfAbsent(ListenerIdentity.of(l), l);
      }
    }
    List<ListenerIdentity> order = new ArrayList<>();
    for (Map.Entry<ListenerIdentity, Listener> e : present.entrySet()) {
      if (inTrouble(e.getKey(), e.getValue())) {
        order.add(e.getKey());
      }
    }
    for (ListenerIdentity id : admitted) {
      if (present.containsKey(id) && !order.contains(id)) {
        order.add(id);
      }
    }
    for (ListenerIdentity id : present.keySet()) {
      if (!order.contains(id)) {
        order.add(id);
      }
    }
    Set<ListenerIdentity> next = new LinkedHashSet<>();
    for (ListenerIdentity id : order) {
      if (next.size() < max) {
        next.add(id);
      } else if (leftOut.add(id)) {
        leftOutCount++;
      }
    }
    leftOut.retainAll(present.keySet());
    leftOut.removeAll(next);
    admitted = next;
    totals.keySet().retainAll(next);
    Set<ListenerKey> exported = new HashSet<>();
    next.forEach(id -> exported.add(id.key()));
    histograms.keySet().retainAll(exported);
    return present;
  }

  private boolean inTrouble(ListenerIdentity id, Listener l) {
    Verdict v = verdicts.get(id);
    return l.full() || l.flags().contains(ListenerFlag.TRUNCATED) || (v != null && v.dropping());
  }

  private void publish(Inventory inventory, Map<ListenerIdentity, Listener> present) {
    List<Row> next = new ArrayList<>(admitted.size());
    for (ListenerIdentity id : admitted) {
      Listener l = present.get(id);
      Totals t = totals.getOrDefault(id, new Totals());
      Verdict v = verdicts.getOrDefault(id, new Verdict(Set.of(), false, false));
      Set<ListenerFlag> flags = l.flags().isEmpty() ? EnumSet.noneOf(ListenerFlag.class) : EnumSet.copyOf(l.flags());
      if (v.dropping()) {
        flags.add(ListenerFlag.DROPPING);
      }
      next.add(new Row(id, l.queue(), l.backlog(), l.requestedBacklog(), t.drops, t.overflows, t.handshakes, t.synack,
          Set.copyOf(flags), v.troubles().isEmpty() ? Set.of() : Set.copyOf(v.troubles()), v.stalled()));
    }
    rows = List.copyOf(next);
    histogramRows = List.copyOf(histograms.values());
    namespaces = inventory.namespaces().stream().filter(filter::admitsNamespace).toList();
    if (inventory.takenAt() != null) {
      inventoryTaken = inventory.takenAt();
    }
    lastReadNanos = System.nanoTime();
  }

  /**
   * Drops that met a full accept queue: the part of the interval's sk_drops rise that the diagnosis found
   * to be accept-queue overflows (sk_drops counts every drop at the listener, so it is the one count that
   * every tier has).
   */
  static long overflows(ListenerInterval li) {
    return li.count(Trouble.ACCEPT_QUEUE_OVERFLOW);
  }

  /** The exported listeners, their gauges at most the configured age old when an inventory source is set. */
  public List<Row> rows() {
    readIfOld();
    return rows;
  }

  /**
   * The exported listeners' histograms, by endpoint: as of the last interval, without the endpoints of
   * listeners gone since (as old as {@link #rows()}).
   */
  public List<ListenerHistograms.Endpoint> histograms() {
    readIfOld();
    return histogramRows;
  }

  private void readIfOld() {
    InventorySource s = source;
    if (s != null && System.nanoTime() - lastReadNanos > maxAge.toNanos()) {
      synchronized (this) {
        if (System.nanoTime() - lastReadNanos > maxAge.toNanos()) {
          lastReadNanos = System.nanoTime(); // one reader per period, even when the read fails
          try {
            refresh(s.read());
          } catch (Exception e) {
            LOG.log(System.Logger.Level.DEBUG, "gauges kept from the last inventory: {0}", e.getMessage());
          }
        }
      }
    }
  }

  /** The exported listeners as the last interval or inventory left them, without reading again. */
  public List<Row> lastRows() {
    return rows;
  }

  public List<NetNamespace> namespaces() {
    return namespaces;
  }

  /** Cumulative state transitions. */
  public Map<StateTransition, Long> transitions() {
    return transitionTotals;
  }

  /** Listeners the cap left out, each counted once while it lasts. */
  public synchronized long leftOut() {
    return leftOutCount;
  }
}
