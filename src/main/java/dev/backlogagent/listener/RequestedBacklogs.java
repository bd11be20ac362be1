package dev.backlogagent.listener;

/**
 * What applications asked for in listen(), as far as the agent has seen those calls. Only BPF sees the
 * requested value (the kernel keeps just the clamped one), so without it every listener's request is unknown.
 */
@FunctionalInterface
public interface RequestedBacklogs {
  /** Knows no request: the inventory without BPF. */
  RequestedBacklogs UNKNOWN = (netns, address, port, backlog) -> null;

  /**
   * The backlog last requested for this listener, or null when no listen() call for it was seen — or
   * when the call seen granted another backlog than {@code backlog}, so it was for an earlier socket.
   */
  Long requested(long netns, String address, int port, long backlog);
}
