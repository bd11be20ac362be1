package dev.backlogagent.diagnosis;

import java.util.List;

/**
 * What the diagnosis found in a namespace but cannot pin on one listener.
 *
 * @param count how many, in the kind's unit
 * @param sockets the listeners (socket inodes) it may belong to; empty when none had activity
 */
public record NamespaceFinding(Kind kind, long count, List<Long> sockets) {
  public NamespaceFinding {
    sockets = List.copyOf(sockets);
  }

  public enum Kind {
    /** TCPReqQFullDrop rose and several listeners dropped SYNs: which of them had the full SYN queue is unknown. */
    SYN_QUEUE_DROPS_UNSPLIT,
    /** ListenOverflows rose but no single listener shows a full accept queue. */
    ACCEPT_OVERFLOWS_UNTIED,
    /** SyncookiesSent rose and no single listener is the one under a SYN flood (tracepoint tier). */
    SYNCOOKIES_UNATTRIBUTED
  }
}
