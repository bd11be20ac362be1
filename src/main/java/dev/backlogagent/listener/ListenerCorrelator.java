package dev.backlogagent.listener;

import dev.backlogagent.decode.BpftraceRecord;
import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.decode.TraceEvent;
import dev.backlogagent.kernel.TracepointSymbols;
import dev.backlogagent.procfs.ListenCounters;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Joins BPF events to the listener inventory, interval by interval. Events name listeners by
 * (namespace, address, port); the join takes the exact address first, then the wildcard listener of the
 * same port, so that a handshake on 127.0.0.1 lands on the listener bound to 0.0.0.0. At the end of an
 * interval each listener's sk_drops delta and its namespace's counter deltas decide what kind of trouble
 * it is in.
 */
public final class ListenerCorrelator {
  private static final String LISTEN_OVERFLOW_REASON = "TCP_LISTEN_OVERFLOW";

  private final TracepointSymbols dropReasons;
  private final Object lock = new Object();
  private Map<ListenerKey, Window> windows = new HashMap<>();
  private Map<String, Long> states = new TreeMap<>();
  private Inventory previous;
  /** Per namespace, the socket inodes that showed SYN-side activity and in which interval (for cookie attribution). */
  private final Map<Long, Map<Long, Long>> recentSynActivity = new HashMap<>();
  private long intervalNumber;
  private static final long SYN_ACTIVITY_MEMORY = 3;
  /** "netns INODE: why" in {@link Inventory#skipped()}: a namespace there that could not be read. */
  private static final Pattern SKIPPED_NETNS = Pattern.compile("^netns (\\d+):");
  private Instant windowStart = Instant.now();

  public ListenerCorrelator(TracepointSymbols dropReasons) {
    this.dropReasons = dropReasons;
  }

  /** What one listener key collected during the current interval. */
  private static final class Window {
    long handshakes;
    long peakQueue = -1;
    long synack;
    final Map<String, Long> dropsByReason = new TreeMap<>();
    final Map<String, Long> refusedByKind = new TreeMap<>();
    final Map<Long, BpftraceRecord.Bucket> waits = new TreeMap<>();
    final Map<Long, BpftraceRecord.Bucket> depths = new TreeMap<>();

    void merge(Window o) {
      handshakes += o.handshakes;
      peakQueue = Math.max(peakQueue, o.peakQueue);
      synack += o.synack;
      o.dropsByReason.forEach((k, v) -> dropsByReason.merge(k, v, Long::sum));
      o.refusedByKind.forEach((k, v) -> refusedByKind.merge(k, v, Long::sum));
      o.waits.values().forEach(b -> add(waits, b));
      o.depths.values().forEach(b -> add(depths, b));
    }

    static void add(Map<Long, BpftraceRecord.Bucket> histogram, BpftraceRecord.Bucket b) {
      histogram.merge(b.min(), b, (x, y) -> new BpftraceRecord.Bucket(x.min(), x.max(), x.count() + y.count()));
    }
  }

  /** Takes one decoded event (from any bpftrace child's thread). */
  public void accept(TraceEvent event) {
    synchronized (lock) {
      if (event instanceof TraceEvent.ListenerCount c) {
        if (c.what() == TraceEvent.Counted.RESETS_SUPPRESSED || c.what() == TraceEvent.Counted.SLOW_ACCEPTS_SUPPRESSED) {
          // Keyed by connection endpoints (ephemeral ports), not listeners: a window for each would only
          // be joined in vain and reported as an empty orphan.
          return;
        }
        Window w = windows.computeIfAbsent(c.key(), k -> new Window());
        switch (c.what()) {
          case HANDSHAKES -> w.handshakes += c.value();
          case QUEUE_PEAK -> w.peakQueue = Math.max(w.peakQueue, c.value());
          case SYNACK_RETRANSMITS -> w.synack += c.value();
          case DROPS -> w.dropsByReason.merge(reasonName(c.detail()), c.value(), Long::sum);
          case SYN_REFUSED -> w.refusedByKind.merge(c.detail() == null ? "unknown" : c.detail(), c.value(), Long::sum);
          default -> { }
        }
      } else if (event instanceof TraceEvent.ListenerHistogram h) {
        Window w = windows.computeIfAbsent(h.key(), k -> new Window());
        Map<Long, BpftraceRecord.Bucket> into = h.what() == TraceEvent.Histogrammed.ACCEPT_WAIT_MICROS ? w.waits : w.depths;
        h.buckets().forEach(b -> Window.add(into, b));
      } else if (event instanceof TraceEvent.StateTransitions s) {
        states.merge(s.from() + ">" + s.to(), s.count(), Long::sum);
      } else if (event instanceof TraceEvent.OverflowStart o) {
        windows.computeIfAbsent(o.key(), k -> new Window());
      }
    }
  }

  private String reasonName(String number) {
    if (number == null) {
      return "unknown";
    }
    try {
      return dropReasons.name(Long.parseLong(number));
    } catch (NumberFormatException e) {
      return number;
    }
  }

  /** The listener an event key names in this inventory, or null. */
  public static Listener join(Inventory inventory, ListenerKey key) {
    return join(inventory.listeners().stream().filter(l -> l.netns() == key.netns() && l.port() == key.port()).toList(), key);
  }

  private record NamespacePort(long netns, int port) {}

  /** Joins among the listeners of the key's namespace and port: its exact address, else the wildcard. */
  private static Listener join(List<Listener> samePort, ListenerKey key) {
    Listener wildcard = null;
    Listener only = null;
    int candidates = 0;
    for (Listener l : samePort) {
      if (l.address().equals(key.address())) {
        return l;
      }
      candidates++;
      only = l;
      if (isWildcard(l.address()) && (l.family().equals(key.familyName()) || l.address().equals("::"))) {
        if (wildcard == null || l.family().equals(key.familyName())) {
          wildcard = l;
        }
      }
    }
    if (wildcard != null) {
      return wildcard;
    }
    return candidates == 1 ? only : null;
  }

  private static boolean isWildcard(String address) {
    return address.equals("0.0.0.0") || address.equals("::");
  }

  /**
   * Ends the interval at {@code now}: joins what was collected to it, computes deltas against the
   * previous inventory, diagnoses each listener, and starts a new interval.
   */
  public IntervalReport close(Inventory now) {
    Map<ListenerKey, Window> collected;
    Map<String, Long> transitions;
    Instant start;
    Inventory before;
    synchronized (lock) {
      collected = windows;
      transitions = states;
      windows = new HashMap<>();
      states = new TreeMap<>();
      start = windowStart;
      windowStart = Instant.now();
      before = previous;
      previous = now;
    }

    Map<Long, ListenCounters> deltas = new HashMap<>();
    Map<Long, Long> dropsBefore = new HashMap<>();
    Map<Long, Boolean> fullBefore = new HashMap<>();
    Set<Long> born = new HashSet<>();
    if (before != null) {
      Set<Long> unreadableBefore = skippedIn(before);
      for (NetNamespace ns : now.namespaces()) {
        Optional<NetNamespace> old = before.namespace(ns.netns());
        if (old.isPresent() && !regressed(ns.counters(), old.get().counters())) {
          deltas.put(ns.netns(), delta(ns.counters(), old.get().counters()));
        } else if (old.isPresent()) {
          // A counter went down: not the namespace read last time but a new one with its freed inode (containers,
          // tests come and go within an interval). Counters only rise, and the new one's began at zero.
          born.add(ns.netns());
          deltas.put(ns.netns(), ns.counters());
        } else if (!unreadableBefore.contains(ns.netns())) {
          // Born since the last read (it was not there, rather than unreadable): its counters began at zero, so
          // all of them are new. One that could not be read last time is not counted again. (Not "never seen
          // before": namespace inodes are reused once freed.)
          born.add(ns.netns());
          deltas.put(ns.netns(), ns.counters());
        }
      }
      for (Listener l : before.listeners()) {
        if (born.contains(l.netns())) {
          continue; // a listener of the namespace that had this inode before
        }
        dropsBefore.put(l.socketInode(), l.drops());
        fullBefore.put(l.socketInode(), l.full());
      }
    }

    // Merge every key's window into the listener it names; keys of no known listener stay apart.
    Map<Long, Window> byListener = new LinkedHashMap<>();
    Map<Long, Listener> listenersByInode = new HashMap<>();
    Map<ListenerKey, Window> orphans = new LinkedHashMap<>();
    Map<NamespacePort, List<Listener>> byPort = new HashMap<>();
    for (Listener l : now.listeners()) {
      byPort.computeIfAbsent(new NamespacePort(l.netns(), l.port()), k -> new ArrayList<>()).add(l);
    }
    for (Map.Entry<ListenerKey, Window> e : collected.entrySet()) {
      ListenerKey key = e.getKey();
      Listener l = join(byPort.getOrDefault(new NamespacePort(key.netns(), key.port()), List.of()), key);
      if (l == null) {
        orphans.put(e.getKey(), e.getValue());
      } else {
        listenersByInode.put(l.socketInode(), l);
        byListener.computeIfAbsent(l.socketInode(), k -> new Window()).merge(e.getValue());
      }
    }
    // A listener whose drops rose is reported even when no event named it (no BPF, or the kernel path is untraced).
    Map<Long, Long> dropsRise = new HashMap<>();
    for (Listener l : now.listeners()) {
      Long old = dropsBefore.get(l.socketInode());
      if (before != null && old == null && l.drops() > 0
          && (before.namespace(l.netns()).isPresent() || born.contains(l.netns()))) {
        // Born during the interval (its namespace was read last time without it, or is itself new): all its
        // drops are new. Had the namespace been unreadable last time, its drops would be counted twice: skip it.
        dropsBefore.put(l.socketInode(), 0L);
        old = 0L;
      }
      if (old != null && l.drops() > old) {
        dropsRise.put(l.socketInode(), l.drops() - old);
        listenersByInode.put(l.socketInode(), l);
        byListener.computeIfAbsent(l.socketInode(), k -> new Window());
      }
    }

    intervalNumber++;
    for (Map.Entry<Long, Window> e : byListener.entrySet()) {
      Listener l = listenersByInode.get(e.getKey());
      if (e.getValue().synack > 0 || dropsRise.containsKey(l.socketInode())) {
        recentSynActivity.computeIfAbsent(l.netns(), k -> new HashMap<>()).put(l.socketInode(), intervalNumber);
      }
    }
    recentSynActivity.values().forEach(m -> m.values().removeIf(n -> intervalNumber - n >= SYN_ACTIVITY_MEMORY));

    List<ListenerInterval> intervals = new ArrayList<>();
    for (Map.Entry<Long, Window> e : byListener.entrySet()) {
      Listener l = listenersByInode.get(e.getKey());
      long drops = dropsRise.getOrDefault(l.socketInode(), 0L);
      boolean wasFull = fullBefore.getOrDefault(l.socketInode(), false);
      ListenCounters nsDelta = deltas.get(l.netns());
      Window w = e.getValue();
      Set<Trouble> troubles = diagnose(l, wasFull, drops, w, nsDelta, synActiveListeners(l.netns()));
      intervals.add(interval(l, keyOf(l), drops, w, troubles));
    }
    for (Map.Entry<ListenerKey, Window> e : orphans.entrySet()) {
      Window w = e.getValue();
      Set<Trouble> troubles = EnumSet.noneOf(Trouble.class);
      refusals(w, troubles);
      intervals.add(interval(null, e.getKey(), 0, w, troubles));
    }
    // SYN cookies that no listener can be blamed for (the tracepoint tier sees cookies only as a namespace
    // counter): reported per namespace rather than lost. A listener that had SYN-side activity in the last
    // few intervals and is its namespace's only such listener takes them.
    Map<Long, Long> unattributedCookies = new HashMap<>();
    for (Map.Entry<Long, ListenCounters> d : deltas.entrySet()) {
      long cookies = d.getValue().syncookiesSent();
      if (cookies == 0) {
        continue;
      }
      boolean attributed = intervals.stream().anyMatch(i -> i.key().netns() == d.getKey() && i.troubles().contains(Trouble.SYNCOOKIES));
      if (!attributed) {
        Listener blamed = onlyRecentSynListener(now, d.getKey());
        if (blamed != null) {
          intervals.add(new ListenerInterval(blamed, keyOf(blamed), 0, 0, -1, 0, Map.of(), Map.of(), List.of(),
              List.of(), EnumSet.of(Trouble.SYNCOOKIES)));
        } else {
          unattributedCookies.put(d.getKey(), cookies);
        }
      }
    }
    Instant end = Instant.now();
    return new IntervalReport(end, Duration.between(start, end), now, deltas, intervals, transitions, unattributedCookies);
  }

  /** The namespaces an inventory could not read. */
  private static Set<Long> skippedIn(Inventory inventory) {
    Set<Long> inodes = new HashSet<>();
    for (String skipped : inventory.skipped()) {
      Matcher m = SKIPPED_NETNS.matcher(skipped);
      if (m.find()) {
        inodes.add(Long.parseLong(m.group(1)));
      }
    }
    return inodes;
  }

  private static ListenerInterval interval(Listener l, ListenerKey key, long drops, Window w, Set<Trouble> troubles) {
    return new ListenerInterval(l, key, drops, w.handshakes, w.peakQueue, w.synack,
        Map.copyOf(w.dropsByReason), Map.copyOf(w.refusedByKind), List.copyOf(w.waits.values()), List.copyOf(w.depths.values()), troubles);
  }

  /** How many listeners of a namespace showed SYN-side activity (SYN-ACK retransmits or drops) lately. */
  private int synActiveListeners(long netns) {
    return recentSynActivity.getOrDefault(netns, Map.of()).size();
  }

  private Listener onlyRecentSynListener(Inventory now, long netns) {
    Map<Long, Long> active = recentSynActivity.getOrDefault(netns, Map.of());
    if (active.size() != 1) {
      return null;
    }
    long inode = active.keySet().iterator().next();
    return now.listeners().stream().filter(l -> l.socketInode() == inode).findFirst().orElse(null);
  }

  private static ListenerKey keyOf(Listener l) {
    return new ListenerKey(l.netns(), "ipv6".equals(l.family()) ? 10 : 2, l.address(), l.port());
  }

  static Set<Trouble> diagnose(
      Listener l, boolean wasFull, long drops, Window w, ListenCounters nsDelta, int synActiveInNamespace) {
    Set<Trouble> troubles = EnumSet.noneOf(Trouble.class);
    if (refusals(w, troubles)) {
      return troubles; // the kprobe tier saw each refusal and its kind: nothing to infer
    }
    boolean acceptSigns = l.full() || wasFull
        || (w.peakQueue >= 0 && w.peakQueue >= l.backlog())
        || w.dropsByReason.containsKey(LISTEN_OVERFLOW_REASON);
    long overflows = nsDelta == null ? 0 : nsDelta.listenOverflows();
    long synQueueDrops = nsDelta == null ? 0 : nsDelta.reqqFullDrops();
    long cookies = nsDelta == null ? 0 : Math.max(nsDelta.reqqFullCookies(), nsDelta.syncookiesSent());
    boolean cookiesEngaged = nsDelta != null && nsDelta.reqqFullCookies() > 0;
    if (drops > 0 && acceptSigns && (overflows > 0 || nsDelta == null)) {
      troubles.add(Trouble.ACCEPT_QUEUE_OVERFLOW);
    }
    if (drops > 0 && (synQueueDrops > 0 || (!acceptSigns && overflows == 0 && !cookiesEngaged))) {
      // Drops with the accept queue not full are SYN-side: a full SYN queue, or the kernel shedding
      // unproven peers once the SYN queue passes three quarters of tcp_max_syn_backlog.
      troubles.add(Trouble.SYN_QUEUE_OVERFLOW);
    }
    if (cookies > 0 && (w.synack > 0 || drops > 0) && synActiveInNamespace == 1) {
      troubles.add(Trouble.SYNCOOKIES);
    }
    return troubles;
  }

  /** Maps the kprobe tier's refusal kinds onto troubles; true when there were any. */
  private static boolean refusals(Window w, Set<Trouble> troubles) {
    for (String kind : w.refusedByKind.keySet()) {
      switch (kind) {
        case "accept" -> troubles.add(Trouble.ACCEPT_QUEUE_OVERFLOW);
        case "syn" -> troubles.add(Trouble.SYN_QUEUE_OVERFLOW);
        case "cookie" -> troubles.add(Trouble.SYNCOOKIES);
        default -> { }
      }
    }
    return !w.refusedByKind.isEmpty();
  }

  /** True when a counter is lower now than before: counters only rise, so these are two namespaces. */
  private static boolean regressed(ListenCounters now, ListenCounters old) {
    return now.listenOverflows() < old.listenOverflows() || now.listenDrops() < old.listenDrops()
        || now.reqqFullDrops() < old.reqqFullDrops() || now.reqqFullCookies() < old.reqqFullCookies()
        || now.syncookiesSent() < old.syncookiesSent() || now.syncookiesRecv() < old.syncookiesRecv()
        || now.syncookiesFailed() < old.syncookiesFailed();
  }

  private static ListenCounters delta(ListenCounters now, ListenCounters old) {
    return new ListenCounters(
        Math.max(0, now.listenOverflows() - old.listenOverflows()),
        Math.max(0, now.listenDrops() - old.listenDrops()),
        Math.max(0, now.reqqFullDrops() - old.reqqFullDrops()),
        Math.max(0, now.reqqFullCookies() - old.reqqFullCookies()),
        Math.max(0, now.syncookiesSent() - old.syncookiesSent()),
        Math.max(0, now.syncookiesRecv() - old.syncookiesRecv()),
        Math.max(0, now.syncookiesFailed() - old.syncookiesFailed()));
  }
}
