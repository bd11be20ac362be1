package dev.backlogagent.listener;

import dev.backlogagent.decode.ListenerKey;
import java.util.List;

/**
 * What applications asked for in listen(), as far as the agent has seen those calls. Only BPF sees the
 * requested value (the kernel keeps just the clamped one), so without it every listener's request is unknown.
 */
@FunctionalInterface
public interface RequestedBacklogs {
  /** Knows no request: the inventory without BPF. */
  RequestedBacklogs UNKNOWN = socket -> null;

  /**
   * A listening socket as the inventory sees it.
   *
   * @param listener where it listens
   * @param inode the socket's inode: a new socket on the same port is another listener
   * @param holders the pids of the processes holding it
   */
  record SocketSeen(ListenerKey listener, long inode, long backlog, List<Integer> holders) {
    public ListenerSocket socket() {
      return new ListenerSocket(listener.netns(), inode);
    }
  }

  /**
   * The backlog requested by the listen() call that made this socket listen, or null when no such call
   * was seen — or when the call seen granted another backlog than the socket has now.
   */
  Long requested(SocketSeen socket);
}
