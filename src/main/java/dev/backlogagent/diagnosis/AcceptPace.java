package dev.backlogagent.diagnosis;

/** What the application did about its full accept queue during the interval, as far as the kernel shows. */
public enum AcceptPace {
  /**
   * Connections were waiting when the interval began, no accept() at all during it, and the queue did not
   * shrink: the server is stuck.
   */
  STALLED,
  /** It accepted, but fewer than arrived: the server is too slow (or its backlog too small) for the load. */
  SLOW,
  /** Accepts are not observed (no accept-wait program), or the evidence disagrees (the queue shrank unseen). */
  UNKNOWN
}
