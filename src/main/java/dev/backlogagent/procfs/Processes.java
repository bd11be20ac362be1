package dev.backlogagent.procfs;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/** Reads processes from /proc: which sockets they hold, and who they are. */
public final class Processes {
  private static final String SOCKET_PREFIX = "socket:[";

  private final Path proc;

  public Processes(Path proc) {
    this.proc = proc;
  }

  /** The process ids in /proc, in no particular order. */
  static List<Integer> pids(Path proc) {
    List<Integer> pids = new ArrayList<>();
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(proc)) {
      for (Path entry : entries) {
        String name = entry.getFileName().toString();
        if (!name.isEmpty() && Character.isDigit(name.charAt(0)) && name.chars().allMatch(Character::isDigit)) {
          pids.add(Integer.parseInt(name));
        }
      }
    } catch (IOException e) {
      return pids;
    }
    return pids;
  }

  /**
   * For each wanted socket inode, the processes that hold a descriptor to it. A socket inherited across
   * fork() is held by parent and child alike, so both are owners. Processes that exit mid-scan are skipped.
   */
  public Map<Long, List<Integer>> holdersOf(Set<Long> socketInodes) {
    Map<Long, List<Integer>> holders = new HashMap<>();
    if (socketInodes.isEmpty()) {
      return holders;
    }
    for (int pid : pids(proc)) {
      Path fds = proc.resolve(pid + "/fd");
      try (DirectoryStream<Path> entries = Files.newDirectoryStream(fds)) {
        for (Path fd : entries) {
          long inode = socketInode(fd);
          if (inode > 0 && socketInodes.contains(inode)) {
            List<Integer> list = holders.computeIfAbsent(inode, k -> new ArrayList<>(1));
            if (!list.contains(pid)) {
              list.add(pid);
            }
          }
        }
      } catch (IOException | SecurityException e) {
        // Exited, or not ours to read: its sockets stay without a known owner.
      }
    }
    return holders;
  }

  private static long socketInode(Path fd) {
    try {
      String target = Files.readSymbolicLink(fd).toString();
      if (!target.startsWith(SOCKET_PREFIX)) {
        return -1;
      }
      return Long.parseLong(target, SOCKET_PREFIX.length(), target.length() - 1, 10);
    } catch (IOException | NumberFormatException | IndexOutOfBoundsException e) {
      return -1;
    }
  }

  /** Who a process is, or empty when it exited before we could ask. */
  public Optional<ProcessIdentity> identify(int pid) {
    Path dir = proc.resolve(Integer.toString(pid));
    try {
      String comm = Files.readString(dir.resolve("comm"), StandardCharsets.UTF_8).strip();
      String cmdline = commandLine(Files.readAllBytes(dir.resolve("cmdline")));
      String containerId = null;
      try {
        containerId = ContainerIds.fromCgroup(Files.readString(dir.resolve("cgroup"), StandardCharsets.UTF_8));
      } catch (IOException e) {
        // No cgroup file: not in a container we can name.
      }
      return Optional.of(new ProcessIdentity(pid, comm, cmdline, containerId));
    } catch (IOException e) {
      return Optional.empty();
    }
  }

  /** Identifies many processes, leaving out those that exited. */
  public Map<Integer, ProcessIdentity> identifyAll(Collection<Integer> pids) {
    Map<Integer, ProcessIdentity> identities = new HashMap<>();
    for (int pid : pids) {
      identify(pid).ifPresent(identity -> identities.put(pid, identity));
    }
    return identities;
  }

  /** /proc/PID/cmdline separates arguments with NUL; a kernel thread has none. */
  static String commandLine(byte[] raw) {
    int end = raw.length;
    while (end > 0 && raw[end - 1] == 0) {
      end--;
    }
    byte[] text = new byte[end];
    for (int i = 0; i < end; i++) {
      text[i] = raw[i] == 0 ? (byte) ' ' : raw[i];
    }
    return new String(text, StandardCharsets.UTF_8);
  }
}
