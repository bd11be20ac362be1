package dev.backlogagent.listener;

/**
 * The kinds of trouble a listener can be in, each with its own remedy and its own unit: what the kernel
 * dropped (or answered) is not the same packet for each kind, and the words say which.
 */
public enum Trouble {
  /**
   * The accept queue was full: SYNs refused and third ACKs dropped (both count in ListenOverflows and the
   * listener's sk_drops). The application accepts too slowly for its backlog, or not at all.
   */
  ACCEPT_QUEUE_OVERFLOW("accept_queue", "SYNs and third ACKs"),
  /** The SYN queue was full and SYN cookies were off: SYNs dropped (TCPReqQFullDrop). */
  SYN_QUEUE_OVERFLOW("syn_queue", "SYNs"),
  /**
   * SYNs dropped with neither queue to blame by the counters: with cookies on, SYNs the kernel could not
   * answer (no route back to a spoofed source); with cookies off, the last quarter of tcp_max_syn_backlog
   * kept for proven peers.
   */
  SYN_DROPPED("syn_dropped", "SYNs"),
  /** The SYN queue overflowed and the kernel answered with SYN cookies (SyncookiesSent): not a drop. */
  SYNCOOKIES("syncookies", "SYN cookies"),
  /** Drops the evidence cannot classify (no namespace counters yet, or counters that saw none of them). */
  UNEXPLAINED_DROPS("unknown", "packets");

  private final String kind;
  private final String unit;

  Trouble(String kind, String unit) {
    this.kind = kind;
    this.unit = unit;
  }

  /** The kind as telemetry spells it: accept_queue, syn_queue, syn_dropped, syncookies, unknown. */
  public String kind() {
    return kind;
  }

  /** What a count of this kind counts, in words: "SYNs and third ACKs", "SYNs", "SYN cookies", "packets". */
  public String unit() {
    return unit;
  }

  /** Whether a count of this kind is packets the kernel dropped (SYN cookies are answers, not drops). */
  public boolean isDrop() {
    return this != SYNCOOKIES;
  }
}
