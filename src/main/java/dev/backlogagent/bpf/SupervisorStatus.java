package dev.backlogagent.bpf;

/**
 * What a supervised bpftrace child is doing, for doctor-like reports and the agent's own metrics.
 *
 * @param restarts how often the child was started again after it exited
 * @param attachFailures how many runs ended before every probe attached
 * @param malformedLines stdout lines that were not bpftrace JSON records (counted, skipped)
 * @param lostEvents events the kernel dropped because the perf buffer was full (bpftrace's lost_events)
 * @param lastError the last error bpftrace printed, or null
 * @param stalls how often a child was found frozen (silent past the limit) and restarted
 * @param killed runs that ended by SIGKILL after attaching, whose counts since the last flush were lost
 */
public record SupervisorStatus(
    String name,
    State state,
    long restarts,
    long attachFailures,
    long malformedLines,
    long lostEvents,
    String lastError,
    long stalls,
    long killed) {

  /** The life of a supervised child. */
  public enum State {
    STARTING,
    ATTACHED,
    BACKING_OFF,
    STOPPED
  }
}
