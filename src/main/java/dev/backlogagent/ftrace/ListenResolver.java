package dev.backlogagent.ftrace;

import dev.backlogagent.decode.AddressFamily;
import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.decode.TraceEvent;
import dev.backlogagent.netlink.ListeningSocket;
import dev.backlogagent.netlink.NetNamespaceEntry;
import dev.backlogagent.netlink.SockDiag;
import dev.backlogagent.procfs.NetNamespaces;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Turns a successful listen(fd, backlog) seen at {@code sys_exit_listen} into a {@link TraceEvent.ListenCall}:
 * the fd through {@code /proc/TID/fd} to its socket inode, the thread's {@code /proc/TID/ns/net} to its
 * namespace, and NETLINK_SOCK_DIAG inside that namespace to the listener's address, port and effective
 * backlog — the same numbers the inventory reads. Done at once, while the process still holds the fd.
 */
public final class ListenResolver {
  private final Path proc;
  private final long ownNetns;

  ListenResolver(Path proc) {
    this.proc = proc;
    this.ownNetns = NetNamespaces.inodeOf(proc.resolve("self/ns/net"));
  }

  /** Why a listen() could not be resolved (the process exited, the fd is not a TCP listener, ...). */
  static final class Unresolved extends Exception {
    Unresolved(String message) {
      super(message);
    }
  }

  TraceEvent.ListenCall resolve(int tid, int fd, long requested) throws Unresolved {
    Path task = proc.resolve(Integer.toString(tid));
    long inode = socketInode(task, fd);
    Path nsLink = task.resolve("ns/net");
    long netns = NetNamespaces.inodeOf(nsLink);
    if (netns < 0) {
      throw new Unresolved("thread " + tid + " is gone");
    }
    List<ListeningSocket> sockets = listenersIn(netns == ownNetns ? null : nsLink.toString());
    for (ListeningSocket s : sockets) {
      if (s.inode() == inode) {
        int tgid = tgid(task, tid);
        return new TraceEvent.ListenCall(new ListenerKey(netns, AddressFamily.of(s.family()), s.address(), s.port()), tgid, comm(task),
            requested, s.backlog());
      }
    }
    throw new Unresolved("socket " + inode + " of thread " + tid + " is not a TCP listener in netns " + netns);
  }

  /**
   * The listener bound to {@code address:port} in the namespace of process {@code pid}, read with
   * NETLINK_SOCK_DIAG inside it (for a source that names no fd, such as solisten); empty when there is none.
   */
  public static java.util.Optional<ListeningSocket> listenerOf(int pid, String address, int port) {
    Path nsLink = Path.of("/proc", Integer.toString(pid), "ns", "net");
    long own = NetNamespaces.inodeOf(Path.of("/proc/self/ns/net"));
    try {
      List<ListeningSocket> sockets = listenersIn(NetNamespaces.inodeOf(nsLink) == own ? null : nsLink.toString());
      return sockets.stream().filter(s -> s.port() == port && s.address().equals(address)).findFirst();
    } catch (Unresolved e) {
      return java.util.Optional.empty();
    }
  }

  private static long socketInode(Path task, int fd) throws Unresolved {
    try {
      String target = Files.readSymbolicLink(task.resolve("fd").resolve(Integer.toString(fd))).toString();
      if (!target.startsWith("socket:[")) {
        throw new Unresolved("fd " + fd + " is " + target + ", not a socket");
      }
      return Long.parseLong(target.substring(8, target.length() - 1));
    } catch (IOException | NumberFormatException e) {
      throw new Unresolved("fd " + fd + " of " + task + " is gone: " + e.getMessage());
    }
  }

  // setns(2) moves only the calling thread: a thread of its own enters, dumps and is thrown away.
  private static List<ListeningSocket> listenersIn(String nsHandle) throws Unresolved {
    if (nsHandle == null) {
      try {
        return new SockDiag().listeners();
      } catch (IOException e) {
        throw new Unresolved("sock_diag: " + e.getMessage());
      }
    }
    AtomicReference<List<ListeningSocket>> found = new AtomicReference<>(List.of());
    AtomicReference<String> failure = new AtomicReference<>();
    Thread visitor = new Thread(() -> {
      try (NetNamespaceEntry entry = NetNamespaceEntry.fromHere()) {
        entry.enter(nsHandle);
        found.set(new SockDiag().listeners());
      } catch (IOException | RuntimeException e) {
        failure.set(e.getMessage());
      }
    }, "ftrace-listen-netns");
    visitor.start();
    try {
      visitor.join();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new Unresolved("interrupted");
    }
    if (failure.get() != null) {
      throw new Unresolved(failure.get());
    }
    return found.get();
  }

  private static int tgid(Path task, int tid) {
    try {
      for (String line : Files.readAllLines(task.resolve("status"), StandardCharsets.UTF_8)) {
        if (line.startsWith("Tgid:")) {
          return Integer.parseInt(line.substring(5).strip());
        }
      }
    } catch (IOException | RuntimeException e) {
      // the thread id is the best left
    }
    return tid;
  }

  private static String comm(Path task) {
    try {
      return Files.readString(task.resolve("comm"), StandardCharsets.UTF_8).strip();
    } catch (IOException e) {
      return null;
    }
  }
}
