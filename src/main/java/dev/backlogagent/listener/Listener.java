package dev.backlogagent.listener;

import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonUnwrapped;
import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.procfs.ProcessIdentity;
import java.util.List;
import java.util.Set;

/**
 * One listening TCP socket, its queues and limits, and the processes that hold it.
 *
 * @param key where it listens (its namespace, family, address and port: the first fields of its JSON)
 * @param queue accept-queue length now
 * @param backlog effective backlog ({@code sk_max_ack_backlog})
 * @param requestedBacklog what the application passed to listen(), when a listen() call was seen; else null
 * @param drops the socket's drop count since it was created ({@code sk_drops})
 * @param socketInode the socket's inode: stable for the socket's life, so it tells one listener from a new
 *     one on the same port
 */
public record Listener(
    @JsonUnwrapped ListenerKey key,
    long queue,
    long backlog,
    @JsonInclude(JsonInclude.Include.ALWAYS) Long requestedBacklog,
    long drops,
    List<ProcessIdentity> processes,
    Set<ListenerFlag> flags,
    @JsonIgnore long socketInode) {

  /** The socket's identity (namespace and inode): what a requested backlog belongs to. */
  public ListenerSocket socket() {
    return new ListenerSocket(key.netns(), socketInode);
  }

  /** True when the kernel's own test (sk_acceptq_is_full) would refuse a connection now. */
  public boolean full() {
    return queue > backlog;
  }

  /** How full the accept queue is, 1.0 at the backlog; a listener with backlog 0 counts as full once used. */
  public double fill() {
    if (backlog == 0) {
      return queue > 0 ? Double.POSITIVE_INFINITY : 0;
    }
    return (double) queue / backlog;
  }

  /** The same listener with other flags. */
  public Listener withFlags(Set<ListenerFlag> newFlags) {
    return new Listener(
        key, queue, backlog, requestedBacklog, drops, processes, newFlags, socketInode);
  }
}
