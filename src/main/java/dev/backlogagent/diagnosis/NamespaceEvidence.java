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
 */
public record NamespaceEvidence(long netns, ListenCounters delta, int syncookies, List<ListenerEvidence> listeners) {
  public NamespaceEvidence {
    listeners = List.copyOf(listeners);
  }
}
