package dev.backlogagent.listener;

import dev.backlogagent.decode.BpftraceRecord;
import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.decode.StateTransition;
import dev.backlogagent.decode.TcpState;
import dev.backlogagent.decode.TraceEvent;
import dev.backlogagent.diagnosis.Diagnosis;
import dev.backlogagent.diagnosis.Finding;
import dev.backlogagent.diagnosis.ListenerEvidence;
import dev.backlogagent.diagnosis.NamespaceEvidence;
import dev.backlogagent.diagnosis.NamespaceFinding;
import dev.backlogagent.diagnosis.RefusalKind;
import dev.backlogagent.kernel.TracepointSymbols;
import dev.backlogagent.procfs.ListenCounters;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.HashSet;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Joins BPF events to the listener inventory, interval by interval. Events name listeners by
 * (namespace, address, port); the join takes the exact address first, then the wildcard listener of the
 * same port, so that a handshake on 127.0.0.1 lands on the listener bound to 0.0.0.0. At the end of an
 * interval it gathers each namespace's evidence (sk_drops rises, queues before and after, counter deltas,
 * the events) and hands it to {@link Diagnosis}, which says what kind of trouble each listener is in.
 */
public final class ListenerCorrelator {
  private static final String LISTEN_OVERFLOW_REASON = "TCP_LISTEN_OVERFLOW";

  private final TracepointSymbols dropReasons;
  private final Object lock = new Object();
  private Map<ListenerKey, Window> windows = new HashMap<>();
  private Map<StateTransition, Long> states = new LinkedHashMap<>();
  private Inventory previous;
  /** Per namespace, the socket inodes that showed SYN-side activity and in which interval (for cookie attribution). */
  private final Map<Long, Map<Long, Long>> recentSynActivity = new HashMap<>();
  private long intervalNumber;
  private static final long SYN_ACTIVITY_MEMORY = 3;
  /** Whether an accept-wait program runs, so that "no accept seen" means no accept (see AcceptPace). */
  private volatile boolean acceptsObserved;
  /** Resets seen this interval, by endpoint, state and reason (lines and suppressed counts together). */
  private Map<ResetKey, Long> resets = new HashMap<>();

  private record ResetKey(ListenerKey key, int state, long reason) {}

  /** "netns INODE: why" in {@link Inventory#skipped()}: a namespace there that could not be read. */
  private static final Pattern SKIPPED_NETNS = Pattern.compile("^netns (\\d+):");

  public ListenerCorrelator(TracepointSymbols dropReasons) {
    this.dropReasons = dropReasons;
  }

  /**
   * Says whether accepts are observed (an accept-wait program of the tier runs): without one, "no accept
   * in the interval" would read as a stalled server.
   */
  public void acceptsObserved(boolean observed) {
    this.acceptsObserved = observed;
  }

  /** What one listener key collected during the current interval. */
  private static final class Window {
    long handshakes;
    long peakQueue = -1;
    long synack;
    long accepts;
    final Map<String, Long> dropsByReason = new TreeMap<>();
    final Map<String, Long> refusedByKind = new TreeMap<>();
    final Map<Long, BpftraceRecord.Bucket> waits = new TreeMap<>();
    final Map<Long, BpftraceRecord.Bucket> depths = new TreeMap<>();

    void merge(Window o) {
      handshakes += o.handshakes;
      peakQueue = Math.max(peakQueue, o.peakQueue);
      synack += o.synack;
      accepts += o.accepts;
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
        if (c.what() == TraceEvent.Counted.RESETS_SUPPRESSED) {
          resetSuppressed(c);
          return;
        }
        if (c.what() == TraceEvent.Counted.SLOW_ACCEPTS_SUPPRESSED) {
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
        if (h.what() == TraceEvent.Histogrammed.ACCEPT_WAIT_MICROS) {
          h.buckets().forEach(b -> w.accepts += b.count()); // one wait per accept()
        }
      } else if (event instanceof TraceEvent.StateTransitions s) {
        states.merge(new StateTransition(s.from(), s.to()), s.count(), Long::sum);
      } else if (event instanceof TraceEvent.ResetSent r) {
        resets.merge(new ResetKey(r.key(), r.state(), r.reason()), 1L, Long::sum);
      } else if (event instanceof TraceEvent.OverflowStart o) {
        windows.computeIfAbsent(o.key(), k -> new Window());
      }
    }
  }

  /** resets.bt's suppressed count, keyed netns,family,addr,port,state,reason (detail "state,reason"). */
  private void resetSuppressed(TraceEvent.ListenerCount c) {
    String[] stateReason = c.detail() == null ? new String[0] : c.detail().split(",");
    if (stateReason.length != 2 || c.key().port() == 0) {
      return; // the port-0 bucket holds endpoints past resets.bt's cap: client ports, not listeners
    }
    try {
      resets.merge(new ResetKey(c.key(), Integer.parseInt(stateReason[0]), Long.parseLong(stateReason[1])), c.value(), Long::sum);
    } catch (NumberFormatException e) {
      // not the contract's numbers: nothing to count
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
    return join(inventory.listeners().stream().filter(l -> l.key().namespacePort() == key.namespacePort()).toList(), key);
  }

  /** Joins among the listeners of the key's namespace and port: its exact address, else the wildcard. */
  private static Listener join(List<Listener> samePort, ListenerKey key) {
    Listener wildcard = null;
    Listener only = null;
    int candidates = 0;
    for (Listener l : samePort) {
      String address = l.key().address();
      if (address.equals(key.address())) {
        return l;
      }
      candidates++;
      only = l;
      if (isWildcard(address) && (l.key().family() == key.family() || address.equals("::"))) {
        if (wildcard == null || l.key().family() == key.family()) {
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
   * previous inventory, diagnoses each namespace, and starts a new interval.
   */
  public IntervalReport close(Inventory now) {
    Map<ListenerKey, Window> collected;
    Map<StateTransition, Long> transitions;
    Map<ResetKey, Long> resetCounts;
    Inventory before;
    synchronized (lock) {
      collected = windows;
      transitions = states;
      resetCounts = resets;
      windows = new HashMap<>();
      states = new LinkedHashMap<>();
      resets = new HashMap<>();
      before = previous;
      previous = now;
    }

    Map<Long, ListenCounters> deltas = new HashMap<>();
    Map<Long, Listener> listenersBefore = new HashMap<>();
    Set<Long> born = new HashSet<>();
    if (before != null) {
      Set<Long> unreadableBefore = skippedIn(before);
      for (NetNamespace ns : now.namespaces()) {
        if (ns.counters() == null) {
          continue;
        }
        Optional<NetNamespace> old = before.namespace(ns.netns());
        if (old.isPresent() && old.get().counters() != null && !regressed(ns.counters(), old.get().counters())) {
          deltas.put(ns.netns(), delta(ns.counters(), old.get().counters()));
        } else if (old.isPresent() && old.get().counters() != null) {
          // A counter went down: not the namespace read last time but a new one with its freed inode (containers,
          // tests come and go within an interval). Counters only rise, and the new one's began at zero.
          born.add(ns.netns());
          deltas.put(ns.netns(), ns.counters());
        } else if (old.isEmpty() && !unreadableBefore.contains(ns.netns())) {
          // Born since the last read (it was not there, rather than unreadable): its counters began at zero, so
          // all of them are new. One that could not be read last time is not counted again. (Not "never seen
          // before": namespace inodes are reused once freed.)
          born.add(ns.netns());
          deltas.put(ns.netns(), ns.counters());
        }
      }
      for (Listener l : before.listeners()) {
        if (born.contains(l.key().netns())) {
          continue; // a listener of the namespace that had this inode before
        }
        listenersBefore.put(l.socketInode(), l);
      }
    }

    // Merge every key's window into the listener it names; keys of no known listener stay apart.
    Map<Long, Window> byListener = new LinkedHashMap<>();
    Map<Long, Listener> listenersByInode = new HashMap<>();
    Map<ListenerKey, Window> orphans = new LinkedHashMap<>();
    Map<Long, List<Listener>> byPort = new HashMap<>();
    for (Listener l : now.listeners()) {
      byPort.computeIfAbsent(l.key().namespacePort(), k -> new ArrayList<>()).add(l);
    }
    for (Map.Entry<ListenerKey, Window> e : collected.entrySet()) {
      ListenerKey key = e.getKey();
      Listener l = join(byPort.getOrDefault(key.namespacePort(), List.of()), key);
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
      Listener old = listenersBefore.get(l.socketInode());
      long dropsBefore;
      if (old != null) {
        dropsBefore = old.drops();
      } else if (before != null && l.drops() > 0
          && (before.namespace(l.key().netns()).isPresent() || born.contains(l.key().netns()))) {
        // Born during the interval (its namespace was read last time without it, or is itself new): all its
        // drops are new. Had the namespace been unreadable last time, its drops would be counted twice: skip it.
        dropsBefore = 0;
      } else {
        continue;
      }
      if (l.drops() > dropsBefore) {
        dropsRise.put(l.socketInode(), l.drops() - dropsBefore);
        listenersByInode.put(l.socketInode(), l);
        byListener.computeIfAbsent(l.socketInode(), k -> new Window());
      }
    }

    intervalNumber++;
    for (Map.Entry<Long, Window> e : byListener.entrySet()) {
      Listener l = listenersByInode.get(e.getKey());
      if (e.getValue().synack > 0 || dropsRise.containsKey(l.socketInode())) {
        recentSynActivity.computeIfAbsent(l.key().netns(), k -> new HashMap<>()).put(l.socketInode(), intervalNumber);
      }
    }
    recentSynActivity.values().forEach(m -> m.values().removeIf(n -> intervalNumber - n >= SYN_ACTIVITY_MEMORY));
    // A listener that flooded lately takes the cookies of a quiet interval: it must be in the evidence.
    for (Listener l : now.listeners()) {
      if (recentSynActivity.getOrDefault(l.key().netns(), Map.of()).containsKey(l.socketInode())) {
        listenersByInode.putIfAbsent(l.socketInode(), l);
        byListener.computeIfAbsent(l.socketInode(), k -> new Window());
      }
    }

    // The evidence of each namespace, diagnosed as a whole: its counters are shared by its listeners.
    Map<Long, List<ListenerEvidence>> evidence = new LinkedHashMap<>();
    for (Map.Entry<Long, Window> e : byListener.entrySet()) {
      Listener l = listenersByInode.get(e.getKey());
      evidence.computeIfAbsent(l.key().netns(), k -> new ArrayList<>())
          .add(evidenceOf(l, listenersBefore.get(l.socketInode()), dropsRise.getOrDefault(l.socketInode(), 0L), e.getValue()));
    }
    Map<Long, Diagnosis.Result> diagnoses = new HashMap<>();
    Map<Long, List<NamespaceFinding>> namespaceFindings = new LinkedHashMap<>();
    Set<Long> namespaces = new java.util.LinkedHashSet<>(evidence.keySet());
    deltas.forEach((netns, d) -> {
      if (d.syncookiesSent() > 0) {
        namespaces.add(netns); // cookies with no listener in sight still belong to the namespace
      }
    });
    for (long netns : namespaces) {
      int syncookies = now.namespace(netns).map(NetNamespace::sysctls).map(s -> s.tcpSyncookies()).orElse(-1);
      Diagnosis.Result r = Diagnosis.diagnose(
          new NamespaceEvidence(netns, deltas.get(netns), syncookies, evidence.getOrDefault(netns, List.of()),
              now.namespace(netns).map(NetNamespace::listenDropsWhileRead).orElse(0L)));
      diagnoses.put(netns, r);
      if (!r.namespace().isEmpty()) {
        namespaceFindings.put(netns, r.namespace());
      }
    }

    List<ListenerInterval> intervals = new ArrayList<>();
    for (Map.Entry<Long, Window> e : byListener.entrySet()) {
      Listener l = listenersByInode.get(e.getKey());
      List<Finding> findings = diagnoses.get(l.key().netns()).of(l.socketInode());
      long drops = dropsRise.getOrDefault(l.socketInode(), 0L);
      Window w = e.getValue();
      if (drops == 0 && findings.isEmpty() && isEmpty(w)) {
        continue; // remembered for its SYN activity, but nothing happened to it this time
      }
      intervals.add(interval(l, l.key(), drops, w, findings));
    }
    for (Map.Entry<ListenerKey, Window> e : orphans.entrySet()) {
      intervals.add(interval(null, e.getKey(), 0, e.getValue(), List.of()));
    }
    Duration length = before == null ? Duration.ZERO : Duration.between(before.takenAt(), now.takenAt());
    return new IntervalReport(now.takenAt(), length, now, deltas, intervals, transitions, namespaceFindings,
        resetsOf(resetCounts, now, byPort));
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

  /** True when a counter is lower now than before: counters only rise, so these are two namespaces. */
  private static boolean regressed(ListenCounters now, ListenCounters old) {
    return now.listenOverflows() < old.listenOverflows() || now.listenDrops() < old.listenDrops()
        || now.reqqFullDrops() < old.reqqFullDrops() || now.reqqFullCookies() < old.reqqFullCookies()
        || now.syncookiesSent() < old.syncookiesSent() || now.syncookiesRecv() < old.syncookiesRecv()
        || now.syncookiesFailed() < old.syncookiesFailed();
  }

  /** Resets that concern a listener (its port) or a refused connection to a local address; the rest are clients'. */
  private static List<ResetCount> resetsOf(Map<ResetKey, Long> counts, Inventory now, Map<Long, List<Listener>> byPort) {
    Map<Long, Set<String>> boundAddresses = new HashMap<>();
    for (Listener l : now.listeners()) {
      boundAddresses.computeIfAbsent(l.key().netns(), k -> new java.util.HashSet<>()).add(l.key().address());
    }
    List<ResetCount> out = new ArrayList<>();
    for (Map.Entry<ResetKey, Long> e : counts.entrySet()) {
      ResetKey r = e.getKey();
      Listener l = joinBound(byPort.getOrDefault(r.key().namespacePort(), List.of()), r.key());
      TcpState state = TcpState.of(r.state());
      boolean refusedLocally = l == null && state == TcpState.NO_SOCKET
          && (isLoopback(r.key().address()) || boundAddresses.getOrDefault(r.key().netns(), Set.of()).contains(r.key().address()));
      if (l != null || refusedLocally) {
        out.add(new ResetCount(r.key(), l, state, r.reason(), e.getValue()));
      }
    }
    out.sort(java.util.Comparator.comparingLong(ResetCount::count).reversed()
        .thenComparing(c -> c.key().netns()).thenComparing(c -> c.key().port()));
    return out;
  }

  /**
   * The listener bound to the key's exact address or to the wildcard of its port; unlike {@link #join} not
   * the port's only listener whatever its address: a reset from a spoofed address to that port is no
   * listener's.
   */
  private static Listener joinBound(List<Listener> samePort, ListenerKey key) {
    Listener joined = join(samePort, key);
    if (joined == null) {
      return null;
    }
    return joined.key().address().equals(key.address()) || isWildcard(joined.key().address()) ? joined : null;
  }

  private static boolean isLoopback(String address) {
    // The loopback addresses connections are made to, not all of 127/8: a flood spoofing 127.x.y.z sources
    // gets resets for its looped-back SYN-ACKs "from" those addresses.
    return address.equals("127.0.0.1") || address.equals("::1") || address.equals("::ffff:127.0.0.1");
  }

  private static boolean isEmpty(Window w) {
    return w.handshakes == 0 && w.synack == 0 && w.accepts == 0 && w.dropsByReason.isEmpty() && w.refusedByKind.isEmpty()
        && w.waits.isEmpty() && w.depths.isEmpty();
  }

  private ListenerEvidence evidenceOf(Listener l, Listener before, long drops, Window w) {
    Map<RefusalKind, Long> refused = new EnumMap<>(RefusalKind.class);
    w.refusedByKind.forEach((word, n) -> {
      RefusalKind kind = RefusalKind.parse(word);
      if (kind != null) {
        refused.merge(kind, n, Long::sum);
      }
    });
    boolean recent = recentSynActivity.getOrDefault(l.key().netns(), Map.of()).containsKey(l.socketInode());
    return new ListenerEvidence(l.socketInode(), l.queue(), l.backlog(), before == null ? -1 : before.queue(), drops,
        w.peakQueue, w.handshakes, acceptsObserved ? w.accepts : -1, w.synack,
        w.dropsByReason.getOrDefault(LISTEN_OVERFLOW_REASON, 0L), refused, recent);
  }

  private static ListenerInterval interval(Listener l, ListenerKey key, long drops, Window w, List<Finding> findings) {
    return new ListenerInterval(l, key, drops, w.handshakes, w.peakQueue, w.synack, w.accepts,
        Map.copyOf(w.dropsByReason), Map.copyOf(w.refusedByKind), List.copyOf(w.waits.values()), List.copyOf(w.depths.values()),
        List.copyOf(findings));
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
