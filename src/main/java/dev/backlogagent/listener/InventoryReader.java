package dev.backlogagent.listener;

import dev.backlogagent.decode.AddressFamily;
import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.netlink.ListeningSocket;
import dev.backlogagent.netlink.NetNamespaceEntry;
import dev.backlogagent.netlink.SockDiag;
import dev.backlogagent.procfs.ListenCounters;
import dev.backlogagent.procfs.NamespaceSysctls;
import dev.backlogagent.procfs.NetNamespaceHandle;
import dev.backlogagent.procfs.NetNamespaces;
import dev.backlogagent.procfs.ProcessIdentity;
import dev.backlogagent.procfs.Processes;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.EnumSet;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;

/**
 * Takes an {@link Inventory}: visits every network namespace on a dedicated thread (setns(2) moves only
 * that thread), dumps its listeners through NETLINK_SOCK_DIAG, reads its sysctls and counters, then finds
 * the processes holding each listener in /proc.
 */
public final class InventoryReader {
  private final Supplier<List<NetNamespaceHandle>> discovery;
  private final Processes processes;
  private final RequestedBacklogs requested;

  /**
   * @param discovery finds the namespaces to visit (normally {@link NetNamespaces#discover()})
   * @param requested what listen() calls asked for, where BPF saw them
   */
  public InventoryReader(
      Supplier<List<NetNamespaceHandle>> discovery, Processes processes, RequestedBacklogs requested) {
    this.discovery = discovery;
    this.processes = processes;
    this.requested = requested;
  }

  /** Reads the host's namespaces and processes; requested backlogs unknown. */
  public static InventoryReader ofHost() {
    return ofHost(RequestedBacklogs.UNKNOWN);
  }

  public static InventoryReader ofHost(RequestedBacklogs requested) {
    return new InventoryReader(NetNamespaces.ofHost()::discover, new Processes(Path.of("/proc")), requested);
  }

  /** Which namespace and port to read; null means all. */
  public record Scope(Long netns, Integer port) {
    public static final Scope ALL = new Scope(null, null);

    /** Whether the namespace of this inode is read. */
    public boolean covers(long inode) {
      return netns == null || netns == inode;
    }

    /** Whether listeners on this port are read. */
    public boolean coversPort(int p) {
      return port == null || port == p;
    }

    boolean covers(ListeningSocket socket) {
      return coversPort(socket.port());
    }
  }

  /** One namespace as seen from inside it. */
  private record Visit(NetNamespace namespace, List<ListeningSocket> sockets) {}

  public Inventory read(Scope scope) throws IOException {
    List<NetNamespaceHandle> targets = new ArrayList<>();
    for (NetNamespaceHandle handle : discovery.get()) {
      if (scope.covers(handle.inode())) {
        targets.add(handle);
      }
    }
    List<String> skipped = new ArrayList<>();
    List<Visit> visits = visitAll(targets, skipped);

    Set<Long> inodes = new HashSet<>();
    for (Visit visit : visits) {
      visit.sockets.forEach(s -> inodes.add(s.inode()));
    }
    Map<Long, List<Integer>> holders = processes.holdersOf(inodes);
    Set<Integer> pids = new HashSet<>();
    holders.values().forEach(pids::addAll);
    Map<Integer, ProcessIdentity> identities = processes.identifyAll(pids);

    List<NetNamespace> seen = new ArrayList<>();
    List<Listener> listeners = new ArrayList<>();
    for (Visit visit : visits) {
      seen.add(visit.namespace);
      for (ListeningSocket socket : visit.sockets) {
        if (scope.covers(socket)) {
          listeners.add(listener(visit.namespace, socket, owners(holders.get(socket.inode()), identities)));
        }
      }
    }
    listeners.sort(Inventory.WORST_FIRST);
    return new Inventory(List.copyOf(seen), List.copyOf(listeners), Instant.now(), List.copyOf(skipped));
  }

  private static List<ProcessIdentity> owners(List<Integer> pids, Map<Integer, ProcessIdentity> identities) {
    if (pids == null) {
      return List.of();
    }
    List<ProcessIdentity> owners = new ArrayList<>(pids.size());
    for (int pid : pids) {
      ProcessIdentity identity = identities.get(pid);
      if (identity != null) {
        owners.add(identity);
      }
    }
    owners.sort((a, b) -> Integer.compare(a.pid(), b.pid()));
    return owners;
  }

  private Listener listener(NetNamespace ns, ListeningSocket socket, List<ProcessIdentity> owners) {
    ListenerKey key = new ListenerKey(ns.netns(), AddressFamily.of(socket.family()), socket.address(), socket.port());
    Long asked = requested.requested(new RequestedBacklogs.SocketSeen(key, socket.inode(), socket.backlog(),
        owners.stream().map(ProcessIdentity::pid).toList()));
    Set<ListenerFlag> flags = EnumSet.noneOf(ListenerFlag.class);
    if (socket.queue() > socket.backlog()) {
      flags.add(ListenerFlag.FULL);
    }
    if (ns.sysctls() != null && socket.backlog() == ns.sysctls().somaxconn()) {
      flags.add(ListenerFlag.AT_SOMAXCONN);
    }
    if (asked != null && asked > socket.backlog()) {
      flags.add(ListenerFlag.TRUNCATED);
    }
    return new Listener(
        key,
        socket.queue(),
        socket.backlog(),
        asked,
        socket.drops(),
        owners,
        flags,
        socket.inode());
  }

  /**
   * Visits the namespaces on a thread of their own, which is thrown away afterwards: should it ever fail
   * to return to the agent's namespace, no other work can run in the wrong place.
   */
  private static List<Visit> visitAll(Collection<NetNamespaceHandle> targets, List<String> skipped)
      throws IOException {
    List<Visit> visits = new ArrayList<>();
    AtomicReference<Throwable> failure = new AtomicReference<>();
    Thread visitor =
        new Thread(
            () -> {
              try (NetNamespaceEntry entry = NetNamespaceEntry.fromHere()) {
                SockDiag diag = new SockDiag();
                for (NetNamespaceHandle target : targets) {
                  visitOne(entry, diag, target, visits, skipped);
                }
              } catch (IOException | RuntimeException e) {
                failure.set(e);
              }
            },
            "netns-visitor");
    visitor.start();
    try {
      visitor.join();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while reading network namespaces", e);
    }
    Throwable t = failure.get();
    if (t instanceof IOException io) {
      throw io;
    }
    if (t instanceof RuntimeException re) {
      throw re;
    }
    return visits;
  }

  private static void visitOne(
      NetNamespaceEntry entry,
      SockDiag diag,
      NetNamespaceHandle target,
      List<Visit> visits,
      List<String> skipped) {
    IOException last = null;
    for (String handle : target.handles()) {
      try {
        entry.enter(handle);
      } catch (IOException e) {
        last = e; // this process exited: try the namespace's next handle
        continue;
      }
      if (NetNamespaces.inodeOf(Path.of("/proc/thread-self/ns/net")) != target.inode()) {
        // The pid was reused by a process elsewhere between discovery and this visit.
        last = new IOException(handle + " now leads to another namespace");
        continue;
      }
      try {
        NamespaceSysctls sysctls = NamespaceSysctls.readCurrent();
        ListenCounters counters = ListenCounters.readCurrent();
        List<ListeningSocket> sockets = diag.listeners();
        // Read again: a drop counted in sk_drops before the dump is in ListenDrops by now. Two reads are never one
        // instant, and under a flood of thousands a second the dump's milliseconds hold drops (Diagnosis).
        long whileRead = Math.max(0, ListenCounters.readCurrent().listenDrops() - counters.listenDrops());
        visits.add(new Visit(new NetNamespace(target.inode(), target.name(), sysctls, counters, whileRead), sockets));
        return;
      } catch (IOException | UncheckedIOException e) {
        skipped.add("netns " + target.inode() + ": " + e.getMessage());
        return;
      }
    }
    skipped.add("netns " + target.inode() + ": " + (last == null ? "no handle" : last.getMessage()));
  }
}
