package dev.backlogagent.procfs;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Finds every network namespace that has a running process, the agent's own, and those that
 * {@code ip netns add} pinned under /run/netns (they can hold listeners of no running process only
 * briefly, but their counters and sysctls are still worth reporting).
 */
public final class NetNamespaces {
  /** How many process handles to keep per namespace, in case the first ones exit while being read. */
  private static final int HANDLES_PER_NAMESPACE = 4;

  private final Path proc;
  private final List<Path> pinDirectories;

  public NetNamespaces(Path proc, List<Path> pinDirectories) {
    this.proc = proc;
    this.pinDirectories = pinDirectories;
  }

  /** The host's namespaces: /proc, and pins in /run/netns and /var/run/netns. */
  public static NetNamespaces ofHost() {
    return new NetNamespaces(Path.of("/proc"), List.of(Path.of("/run/netns"), Path.of("/var/run/netns")));
  }

  /** The namespaces in discovery order: the agent's own first. */
  public List<NetNamespaceHandle> discover() {
    Map<Long, String> names = new LinkedHashMap<>();
    Map<Long, List<String>> handles = new LinkedHashMap<>();
    long own = inodeOf(proc.resolve("self/ns/net"));
    if (own > 0) {
      handles.computeIfAbsent(own, k -> new ArrayList<>()).add(proc.resolve("self/ns/net").toString());
    }
    for (Path directory : pinDirectories) {
      if (!Files.isDirectory(directory)) {
        continue;
      }
      try (DirectoryStream<Path> pins = Files.newDirectoryStream(directory)) {
        for (Path pin : pins) {
          long inode = fileInode(pin);
          if (inode > 0 && !names.containsKey(inode)) {
            names.put(inode, pin.getFileName().toString());
            handles.computeIfAbsent(inode, k -> new ArrayList<>()).add(0, pin.toString());
          }
        }
      } catch (IOException e) {
        // An unreadable pin directory only costs us the names; /proc still finds the namespaces.
      }
    }
    for (int pid : Processes.pids(proc)) {
      Path link = proc.resolve(pid + "/ns/net");
      long inode = inodeOf(link);
      if (inode <= 0) {
        continue; // exited, or a kernel thread without namespaces we may read
      }
      List<String> list = handles.computeIfAbsent(inode, k -> new ArrayList<>());
      if (list.size() < HANDLES_PER_NAMESPACE) {
        list.add(link.toString());
      }
    }
    List<NetNamespaceHandle> found = new ArrayList<>();
    handles.forEach((inode, list) -> found.add(new NetNamespaceHandle(inode, names.get(inode), List.copyOf(list))));
    return found;
  }

  /** The inode of a namespace link such as /proc/PID/ns/net ("net:[4026531833]"), or -1. */
  public static long inodeOf(Path namespaceLink) {
    try {
      String target = Files.readSymbolicLink(namespaceLink).toString();
      int open = target.indexOf('[');
      int close = target.indexOf(']');
      if (target.startsWith("net:") && open > 0 && close > open) {
        return Long.parseLong(target.substring(open + 1, close));
      }
      return -1;
    } catch (IOException | NumberFormatException | UnsupportedOperationException e) {
      return -1;
    }
  }

  private static long fileInode(Path pin) {
    try {
      Object inode = Files.getAttribute(pin, "unix:ino");
      return inode instanceof Number n ? n.longValue() : -1;
    } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
      return -1;
    }
  }
}
