package dev.backlogagent.diagnosis;

import dev.backlogagent.procfs.ListenCounters;
import java.util.List;

/**
 * One namespace's interval: how its TcpExt counters moved and the evidence of each of its listeners that
 * had activity.
 *
 * @param delta the rise of ListenOverflows, ListenDrops, TCPReqQFullDrop, TCPReqQFullDoCookies,
 *     SyncookiesSent...; null when unknown (the namespace was not read at the interval's start)
 * @param syncookies the namespace's net.ipv4.tcp_syncookies, -1 when unknown
 * @param listenDropsWhileRead how much ListenDrops rose while the namespace's sockets were read: the most
 *     drops the sockets can show that {@code delta} does not have yet (the two reads are not one instant)
 */
public record NamespaceEvidence(long netns, ListenCounters delta, int syncookies, List<ListenerEvidence> listeners,
    long listenDropsWhileRead) {
  public NamespaceEvidence {
    listeners = List.copyOf(listeners);
  }

  /** Evidence whose counters were read with no measure of what rose while the sockets were read. */
  public NamespaceEvidence(long netns, ListenCounters delta, int syncookies, List<ListenerEvidence> listeners) {
    this(netns, delta, syncookies, listeners, 0);
  }
}
