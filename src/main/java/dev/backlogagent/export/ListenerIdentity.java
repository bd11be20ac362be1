package dev.backlogagent.export;

import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.listener.Listener;
import dev.backlogagent.procfs.ProcessIdentity;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.common.AttributesBuilder;
import java.util.Comparator;

/**
 * A listener as telemetry names it: where it listens and which process holds it. This is the set of
 * attributes of every per-listener series, so it never holds anything with unbounded values (no client
 * address, no ephemeral port).
 *
 * @param key where it listens
 * @param pid the holding process (the lowest pid when a socket is shared by forked workers: the parent),
 *     or 0 when no process could be seen
 */
public record ListenerIdentity(ListenerKey key, int pid, String executable, String containerId) {

  public static final AttributeKey<String> TRANSPORT = AttributeKey.stringKey("network.transport");
  public static final AttributeKey<String> NETWORK_TYPE = AttributeKey.stringKey("network.type");
  public static final AttributeKey<String> LOCAL_ADDRESS = AttributeKey.stringKey("network.local.address");
  public static final AttributeKey<Long> LOCAL_PORT = AttributeKey.longKey("network.local.port");
  public static final AttributeKey<Long> PID = AttributeKey.longKey("process.pid");
  public static final AttributeKey<String> EXECUTABLE = AttributeKey.stringKey("process.executable.name");
  public static final AttributeKey<String> CONTAINER = AttributeKey.stringKey("container.id");
  /** The network namespace's inode: what `ip netns identify`, lsns and ss -N (by name) tell apart. */
  public static final AttributeKey<Long> NETNS = AttributeKey.longKey("netns.inode");

  public static ListenerIdentity of(Listener l) {
    ProcessIdentity owner = l.processes().stream().min(Comparator.comparingInt(ProcessIdentity::pid)).orElse(null);
    return owner == null ? new ListenerIdentity(l.key(), 0, null, null)
        : new ListenerIdentity(l.key(), owner.pid(), owner.comm(), owner.containerId());
  }

  /** A listener known only by how a BPF event named it, held by the process that the event saw. */
  public static ListenerIdentity of(ListenerKey key, int pid, String comm) {
    return new ListenerIdentity(key, pid, comm, null);
  }

  public Attributes attributes() {
    AttributesBuilder b = endpointAttributes().toBuilder();
    if (pid > 0) {
      b.put(PID, (long) pid);
    }
    if (executable != null) {
      b.put(EXECUTABLE, executable);
    }
    if (containerId != null) {
      b.put(CONTAINER, containerId);
    }
    return b.build();
  }

  /**
   * Where it listens, without the process: the attributes of series that the SDK keeps until it restarts
   * (the histograms), so that a restarted server continues its listener's series instead of leaving one
   * per pid behind.
   */
  public Attributes endpointAttributes() {
    return Attributes.builder()
        .put(TRANSPORT, "tcp")
        .put(NETWORK_TYPE, key.family().label())
        .put(LOCAL_ADDRESS, key.address())
        .put(LOCAL_PORT, (long) key.port())
        .put(NETNS, key.netns())
        .build();
  }

  /** How a person names it: python3[812] 0.0.0.0:80. */
  public String label() {
    String where = key.endpoint();
    return executable == null ? where : executable + "[" + pid + "] " + where;
  }
}
