package dev.backlogagent.diagnosis;

import dev.backlogagent.listener.Trouble;
import dev.backlogagent.procfs.ListenCounters;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What one interval's evidence means, namespace by namespace: a pure function (no I/O, no clock, no
 * state), so that every situation is a row of a table test. docs/diagnosis.md is its reference.
 *
 * <p>Counts come from each listener's own sk_drops rise (exact, what ss shows); the kind of each drop
 * from the namespace's counter deltas, which the listeners of a namespace share: ListenOverflows is
 * handed to the listeners that show a full accept queue, what is left of ListenDrops (SYN-side drops) to
 * the others, and TCPReqQFullDrop splits those into SYN-queue overflows and other SYN drops only where
 * the evidence allows — otherwise the split is reported as the namespace's, not guessed per listener.
 */
public final class Diagnosis {
  private Diagnosis() {}

  /**
   * The findings of one namespace.
   *
   * @param byListener per socket inode, its findings (listeners without any are absent)
   */
  public record Result(Map<Long, List<Finding>> byListener, List<NamespaceFinding> namespace) {
    public List<Finding> of(long socket) {
      return byListener.getOrDefault(socket, List.of());
    }
  }

  /** Counter races (netstat and the socket dump are read a few microseconds apart) stay below this. */
  static boolean negligible(long part, long whole) {
    return part <= Math.max(2, whole / 100);
  }

  public static Result diagnose(NamespaceEvidence ns) {
    Map<Long, List<Finding>> found = new LinkedHashMap<>();
    List<NamespaceFinding> nsFindings = new ArrayList<>();
    ListenCounters d = ns.delta();

    List<ListenerEvidence> dropping = new ArrayList<>();
    for (ListenerEvidence l : ns.listeners()) {
      if (l.drops() > 0) {
        dropping.add(l);
      }
    }
    dropping.sort(Comparator.comparingLong(ListenerEvidence::drops).reversed().thenComparingLong(ListenerEvidence::socket));

    // Budgets the namespace's counters give, shared by its listeners.
    long overflowsLeft = d == null ? 0 : d.listenOverflows();
    long synQueueLeft = d == null ? 0 : d.reqqFullDrops();
    long synSidePool = d == null ? 0 : Math.max(0, d.listenDrops() - d.listenOverflows());

    Map<Long, Long> accept = new LinkedHashMap<>();
    Map<Long, Long> synSide = new LinkedHashMap<>();
    Map<Long, Long> unexplained = new LinkedHashMap<>();

    // The kprobe tier saw each refusal and its kind: it classifies its listener's drops itself.
    List<ListenerEvidence> inferred = new ArrayList<>();
    for (ListenerEvidence l : dropping) {
      if (!l.hasRefusals()) {
        inferred.add(l);
        continue;
      }
      long a = l.refused(RefusalKind.ACCEPT);
      long s = l.refused(RefusalKind.SYN);
      long toAccept = a + s == 0 ? 0 : Math.round((double) l.drops() * a / (a + s));
      long toSynQueue = a + s == 0 ? 0 : l.drops() - toAccept;
      add(found, l, accepted(l, toAccept));
      if (toSynQueue > 0) {
        add(found, l, Finding.of(Trouble.SYN_QUEUE_OVERFLOW, toSynQueue));
      }
      long rest = l.drops() - toAccept - toSynQueue;
      if (rest > 0) {
        // Only cookie refusals: SYNs meant to get a cookie that the kernel could not answer.
        add(found, l, Finding.of(l.refused(RefusalKind.COOKIE) > 0 ? Trouble.SYN_DROPPED : Trouble.UNEXPLAINED_DROPS, rest));
      }
      overflowsLeft = Math.max(0, overflowsLeft - toAccept);
      synQueueLeft = Math.max(0, synQueueLeft - toSynQueue);
      synSidePool = Math.max(0, synSidePool - toSynQueue - rest);
    }

    if (d == null) {
      // No counter deltas (the namespace's first interval): only the listener's own signs speak.
      for (ListenerEvidence l : inferred) {
        if (l.acceptQueueFull()) {
          add(found, l, accepted(l, l.drops()));
        } else {
          add(found, l, Finding.of(Trouble.UNEXPLAINED_DROPS, l.drops()));
        }
      }
      cookies(ns, found, nsFindings, Map.of());
      return new Result(found, nsFindings);
    }

    // 1. ListenOverflows goes to the listeners whose accept queue was seen full, biggest first.
    List<ListenerEvidence> others = new ArrayList<>();
    for (ListenerEvidence l : inferred) {
      if (l.acceptQueueFull()) {
        long share = Math.min(l.drops(), overflowsLeft);
        overflowsLeft -= share;
        accept.put(l.socket(), share);
      } else {
        others.add(l);
      }
    }
    // Overflows left over: the one other dropping listener takes them; several cannot be told apart.
    if (overflowsLeft > 0 && !others.isEmpty()) {
      if (others.size() == 1) {
        ListenerEvidence l = others.get(0);
        long share = Math.min(l.drops(), overflowsLeft);
        overflowsLeft -= share;
        accept.put(l.socket(), share);
      } else if (!negligible(overflowsLeft, d.listenOverflows())) {
        nsFindings.add(new NamespaceFinding(NamespaceFinding.Kind.ACCEPT_OVERFLOWS_UNTIED, overflowsLeft,
            others.stream().map(ListenerEvidence::socket).toList()));
      }
    }

    // 2. The rest of each listener's drops is SYN-side, as far as ListenDrops - ListenOverflows goes:
    // first the listeners with no full accept queue, then the residue of those with one. A residue the
    // pool cannot hold is a race (kept with the accept queue) or, without a full queue, unexplained.
    for (ListenerEvidence l : others) {
      long residue = l.drops() - accept.getOrDefault(l.socket(), 0L);
      long share = Math.min(residue, synSidePool);
      if (residue - share > 0 && share > 0
          && residue - share <= Math.max(Math.max(2, residue / 10), ns.listenDropsWhileRead())) {
        // The counters were read a moment before the socket: under a flood of thousands a second, the
        // drops of those milliseconds are the same kind as the rest (the next interval's counters have them).
        // How many at most: what ListenDrops gained while the sockets were read (a flood's first interval
        // can hold few drops, 11 of 36 of them from those milliseconds).
        share = residue;
      }
      synSidePool = Math.max(0, synSidePool - share);
      if (share > 0) {
        synSide.put(l.socket(), share);
      }
      if (residue - share > 0) {
        unexplained.put(l.socket(), residue - share);
      }
    }
    for (ListenerEvidence l : inferred) {
      if (!l.acceptQueueFull()) {
        continue;
      }
      long residue = l.drops() - accept.get(l.socket());
      long share = negligible(residue, l.drops()) ? 0 : Math.min(residue, synSidePool);
      synSidePool -= share;
      if (share > 0) {
        synSide.put(l.socket(), share);
      }
      // What is left is a counter race (netstat is read a moment before the socket dump, so sk_drops can hold
      // overflows that the next interval's ListenOverflows counts) only up to what the counters gained while
      // the sockets were read, or a negligible few. Beyond that the listener dropped packets that neither
      // ListenOverflows nor ListenDrops counts (a 6.1 guest, SYN cookies and resets during an overflow: 41
      // sk_drops, 37 overflows): calling them overflows would overstate the kernel's own count.
      long left = residue - share;
      long race = negligible(left, l.drops()) || left <= ns.listenDropsWhileRead() ? left : 0;
      accept.merge(l.socket(), race, Long::sum);
      if (left - race > 0) {
        unexplained.merge(l.socket(), left - race, Long::sum);
      }
    }

    for (ListenerEvidence l : inferred) {
      long a = accept.getOrDefault(l.socket(), 0L);
      if (a > 0) {
        add(found, l, accepted(l, a));
      }
    }

    // 3. SYN-side drops: SYN-queue overflows (TCPReqQFullDrop) or other SYN drops, split where possible.
    long synSideTotal = synSide.values().stream().mapToLong(Long::longValue).sum();
    long pool = Math.max(1, synSideTotal);
    long otherSyn = Math.max(0, synSideTotal - synQueueLeft);
    boolean allSynQueue = synQueueLeft > 0 && negligible(otherSyn, pool);
    boolean noSynQueue = negligible(synQueueLeft, pool) || synQueueLeft == 0;
    List<Long> unsplit = new ArrayList<>();
    for (ListenerEvidence l : inferred) {
      Long s = synSide.get(l.socket());
      if (s == null) {
        continue;
      }
      if (allSynQueue) {
        add(found, l, Finding.of(Trouble.SYN_QUEUE_OVERFLOW, s));
      } else if (noSynQueue) {
        add(found, l, Finding.of(Trouble.SYN_DROPPED, s));
      } else if (synSide.size() == 1) {
        long q = Math.min(s, synQueueLeft);
        add(found, l, Finding.of(Trouble.SYN_QUEUE_OVERFLOW, q));
        if (s - q > 0) {
          add(found, l, Finding.of(Trouble.SYN_DROPPED, s - q));
        }
      } else {
        add(found, l, new Finding(Trouble.SYN_DROPPED, s, AcceptPace.UNKNOWN, -1, true));
        unsplit.add(l.socket());
      }
    }
    if (!unsplit.isEmpty()) {
      nsFindings.add(new NamespaceFinding(NamespaceFinding.Kind.SYN_QUEUE_DROPS_UNSPLIT, synQueueLeft, unsplit));
    }
    for (ListenerEvidence l : inferred) {
      Long u = unexplained.get(l.socket());
      if (u != null) {
        add(found, l, Finding.of(Trouble.UNEXPLAINED_DROPS, u));
      }
    }
    cookies(ns, found, nsFindings, synSide);
    return new Result(found, nsFindings);
  }

  /** An accept-queue overflow, with what the application did about it. */
  private static Finding accepted(ListenerEvidence l, long count) {
    AcceptPace pace;
    if (l.accepts() < 0) {
      pace = AcceptPace.UNKNOWN;
    } else if (l.accepts() > 0) {
      pace = AcceptPace.SLOW;
    } else if (l.queueBefore() <= 0) {
      // Nothing was waiting when the interval began: the connections came during it, perhaps a moment
      // before its end (a burst bigger than the backlog) — no time to accept is not a stall.
      pace = AcceptPace.UNKNOWN;
    } else if (l.queue() < l.queueBefore()) {
      pace = AcceptPace.UNKNOWN; // the queue shrank, yet no accept was seen (io_uring accepts are not)
    } else {
      pace = AcceptPace.STALLED;
    }
    return new Finding(Trouble.ACCEPT_QUEUE_OVERFLOW, count, pace, l.accepts(), false);
  }

  /**
   * SyncookiesSent is a namespace counter: it goes to the listener the kprobe tier saw refuse with
   * cookies, else to the namespace's one listener with SYN-side activity (this interval, else lately),
   * else it stays the namespace's.
   */
  private static void cookies(NamespaceEvidence ns, Map<Long, List<Finding>> found, List<NamespaceFinding> nsFindings,
      Map<Long, Long> synSide) {
    long sent = ns.delta() == null ? 0 : ns.delta().syncookiesSent();
    List<ListenerEvidence> refusing = ns.listeners().stream().filter(l -> l.refused(RefusalKind.COOKIE) > 0).toList();
    if (!refusing.isEmpty()) {
      long total = refusing.stream().mapToLong(l -> l.refused(RefusalKind.COOKIE)).sum();
      long left = sent;
      for (int i = 0; i < refusing.size(); i++) {
        ListenerEvidence l = refusing.get(i);
        long share = ns.delta() == null ? l.refused(RefusalKind.COOKIE)
            : i == refusing.size() - 1 ? left : Math.round((double) sent * l.refused(RefusalKind.COOKIE) / total);
        left -= share;
        if (share > 0) {
          add(found, l, Finding.of(Trouble.SYNCOOKIES, share));
        }
      }
      return;
    }
    if (sent == 0) {
      return;
    }
    List<ListenerEvidence> active = ns.listeners().stream()
        .filter(l -> synSide.containsKey(l.socket()) || l.synackRetransmits() > 0).toList();
    if (active.isEmpty()) {
      active = ns.listeners().stream().filter(ListenerEvidence::synActiveRecently).toList();
    }
    if (active.size() == 1) {
      add(found, active.get(0), Finding.of(Trouble.SYNCOOKIES, sent));
    } else {
      nsFindings.add(new NamespaceFinding(NamespaceFinding.Kind.SYNCOOKIES_UNATTRIBUTED, sent,
          active.stream().map(ListenerEvidence::socket).toList()));
    }
  }

  private static void add(Map<Long, List<Finding>> found, ListenerEvidence l, Finding f) {
    if (f.count() > 0) {
      found.computeIfAbsent(l.socket(), k -> new ArrayList<>()).add(f);
    }
  }
}
