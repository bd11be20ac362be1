package dev.backlogagent.listener;

/** The kinds of trouble a listener can be in, each with its own remedy. */
public enum Trouble {
  /** The application does not accept fast enough, or its backlog is too small: SYNs or third ACKs dropped. */
  ACCEPT_QUEUE_OVERFLOW,
  /** Half-open requests pile up (a SYN flood, or lost final ACKs) and SYNs are dropped: no SYN cookies. */
  SYN_QUEUE_OVERFLOW,
  /** The SYN queue overflowed and the kernel answers with SYN cookies instead of dropping. */
  SYNCOOKIES;

  /** The kind as telemetry spells it: accept_queue, syn_queue, syncookies. */
  public String kind() {
    return switch (this) {
      case ACCEPT_QUEUE_OVERFLOW -> "accept_queue";
      case SYN_QUEUE_OVERFLOW -> "syn_queue";
      case SYNCOOKIES -> "syncookies";
    };
  }
}
