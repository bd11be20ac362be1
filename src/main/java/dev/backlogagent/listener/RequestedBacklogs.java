package dev.backlogagent.listener;

/**
 * What applications asked for in listen(), as far as the agent has seen those calls. Only BPF sees the
 * requested value (the kernel keeps just the clamped one), so without it every listener's request is unknown.
 */
@FunctionalInterface
public interface RequestedBacklogs {
  /** Knows no request: the inventory without BPF. */
  RequestedBacklogs UNKNOWN = (netns, address, port) -> null;

  /** The backlog last requested for this listener, or null when no listen() call for it was seen. */
  Long requested(long netns, String address, int port);
}
