package dev.backlogagent.decode;

import java.util.List;

/** What the BPF programs report, decoded from their JSON lines (see each bpf/*.bt header for the contract). */
public sealed interface TraceEvent {

  /** An event that names a listener (all but state transitions). */
  sealed interface AtListener extends TraceEvent {
    ListenerKey key();
  }

  /** A listen() call: what the application asked for and what the kernel granted. */
  record ListenCall(ListenerKey key, int pid, String comm, long requestedBacklog, long backlog) implements AtListener {}

  /** A reset sent; {@code state} is the TCP state of the socket, {@code reason} the kernel's reason number. */
  record ResetSent(ListenerKey key, int state, long reason) implements AtListener {}

  /**
   * A connection that waited in the accept queue longer than the threshold. {@code queue}: at the tracepoint
   * tier the connections already queued when this one joined ({@code queue_ahead}); at the kprobe tier those
   * left after this accept ({@code queue}). {@code handshakeNanos} is 0 when the program does not say.
   */
  record SlowAccept(ListenerKey key, int pid, String comm, long handshakeNanos, long waitMicros, long queue, long backlog)
      implements AtListener {}

  /** The first refused SYN or third ACK of an overflow burst (kprobe tier), with the full queue's length and limit. */
  record OverflowStart(ListenerKey key, String kind, long queue, long backlog, int syncookies) implements AtListener {}

  /** A per-listener count over the last interval. {@code detail}: the drop reason or refusal kind, else null. */
  record ListenerCount(Counted what, ListenerKey key, String detail, long value) implements AtListener {}

  /** A per-listener histogram over the last interval. */
  record ListenerHistogram(Histogrammed what, ListenerKey key, List<BpftraceRecord.Bucket> buckets) implements AtListener {}

  /** TCP state transitions from one state to another over the last interval. */
  record StateTransitions(int from, int to, long count) implements TraceEvent {}

  /** What a {@link ListenerCount} counts. */
  enum Counted {
    HANDSHAKES,
    /** Not a count: the largest accept-queue length seen at a handshake in the interval. */
    QUEUE_PEAK,
    SYNACK_RETRANSMITS,
    /** Packets dropped at the listener, per kernel drop reason (detail: its number). */
    DROPS,
    /** SYNs or third ACKs refused (kprobe tier), per kind (detail: accept, syn, cookie). */
    SYN_REFUSED,
    RESETS_SUPPRESSED,
    SLOW_ACCEPTS_SUPPRESSED
  }

  /** What a {@link ListenerHistogram} measures. */
  enum Histogrammed {
    /** Accept-queue length at each handshake. */
    QUEUE_DEPTH,
    /** Time from handshake to accept(), in microseconds. */
    ACCEPT_WAIT_MICROS
  }
}
