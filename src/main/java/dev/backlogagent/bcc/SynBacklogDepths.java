package dev.backlogagent.bcc;

import dev.backlogagent.decode.BpftraceRecord;
import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.decode.TraceEvent;
import dev.backlogagent.listener.Inventory;
import dev.backlogagent.listener.Listener;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.function.Supplier;

/**
 * What {@code tcpsynbl INTERVAL} says, given to listeners: the accept queue's length each time a third ACK (or a
 * SYN cookie's ACK) was about to create a child, in power-of-two slots, one histogram per effective backlog
 * ({@code sk_max_ack_backlog}) — the tool knows no socket, address, port or namespace. A histogram goes to the
 * inventory's only listener with that backlog, else to the only one of those that took handshakes this interval
 * or the one before (as tcpstates saw them); otherwise its samples are counted as unattributed. Each bucket
 * becomes a {@link TraceEvent.Histogrammed#QUEUE_DEPTH} bucket and a {@link TraceEvent.Counted#QUEUE_PEAK} of at
 * least its low end. Not thread-safe: its tier calls it under its lock.
 */
final class SynBacklogDepths {
  private final Supplier<Inventory> inventory;
  private final Supplier<Inventory> fresh;
  /** The limit of the histogram being printed (-1: none yet this interval), and its listener (null: none or several). */
  private long limit = -1;
  private ListenerKey listener;
  /** {@link ListenerKey#namespacePort()} of the listeners tcpstates saw take handshakes, this interval and the one before. */
  private Set<Long> handshakesNow = new HashSet<>();
  private Set<Long> handshakesBefore = new HashSet<>();
  private long samples;
  private long unattributed;

  /**
   * @param inventory the latest inventory
   * @param fresh one read now, for a limit the latest has no listener with: a listener born less than an interval
   *     ago (its handshakes, and tcpsynbl's print, come at once)
   */
  SynBacklogDepths(Supplier<Inventory> inventory, Supplier<Inventory> fresh) {
    this.inventory = inventory;
    this.fresh = fresh;
  }

  /** A handshake tcpstates saw on this listener key: it may single out the listener of a shared limit. */
  void handshake(ListenerKey key) {
    handshakesNow.add(key.namespacePort());
  }

  /** The agent's interval rolled over: handshakes older than the one before no longer single anyone out. */
  void nextInterval() {
    handshakesBefore = handshakesNow;
    handshakesNow = new HashSet<>();
  }

  /** The events one line of tcpsynbl's gives (none for the banner, blank and header lines). */
  List<TraceEvent> line(String line) throws ToolLines.MalformedLine {
    Optional<ToolLines.SynBacklogLine> parsed = ToolLines.tcpsynbl(line);
    if (parsed.isEmpty()) {
      if (line.isBlank()) {
        limit = -1; // a new interval's histograms follow
      }
      return List.of();
    }
    if (parsed.get() instanceof ToolLines.BacklogLimit l) {
      limit = l.backlogMax();
      listener = listenerWithBacklog(limit);
      return List.of();
    }
    ToolLines.BacklogBucket b = (ToolLines.BacklogBucket) parsed.get();
    if (limit < 0) {
      throw new ToolLines.MalformedLine("tcpsynbl", "a bucket before any backlog_max: " + line);
    }
    if (listener == null) {
      unattributed += b.count();
      return List.of();
    }
    samples += b.count();
    List<TraceEvent> events = new ArrayList<>();
    events.add(new TraceEvent.ListenerHistogram(TraceEvent.Histogrammed.QUEUE_DEPTH, listener,
        List.of(new BpftraceRecord.Bucket(b.low(), b.high(), b.count()))));
    // The fullest the queue was at a handshake, at least: the slot's low end. A sample above the limit is a third
    // ACK refused for a full queue (limit + 1), so a handshake had found it at the limit.
    events.add(new TraceEvent.ListenerCount(TraceEvent.Counted.QUEUE_PEAK, listener, null, Math.min(b.low(), limit)));
    return events;
  }

  /** Samples given to a listener since the start. */
  long samples() {
    return samples;
  }

  /** Samples of a limit no single listener has, since the start. */
  long unattributed() {
    return unattributed;
  }

  private ListenerKey listenerWithBacklog(long backlog) {
    List<Listener> withIt = withBacklog(inventory.get(), backlog);
    if (withIt.isEmpty()) {
      withIt = withBacklog(fresh.get(), backlog);
    }
    if (withIt.size() > 1) {
      withIt = withIt.stream().filter(l -> handshakesNow.contains(l.key().namespacePort())
          || handshakesBefore.contains(l.key().namespacePort())).toList();
    }
    if (withIt.size() != 1) {
      return null;
    }
    return withIt.get(0).key();
  }

  private static List<Listener> withBacklog(Inventory inventory, long backlog) {
    return inventory == null ? List.of() : inventory.listeners().stream().filter(l -> l.backlog() == backlog).toList();
  }
}
