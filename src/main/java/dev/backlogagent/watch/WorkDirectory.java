package dev.backlogagent.watch;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFileAttributes;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * The agent's scratch directory for the bpftrace programs it writes, {@code TMP/backlog-agent-*}. A
 * directory records its owner (pid and the process's start time, so that a reused pid is not mistaken
 * for the owner); an agent killed with SIGKILL cannot remove its own, so each start removes those whose
 * owner is dead. Directories of live agents, of other users, without an owner record, or that are links
 * are left alone.
 */
final class WorkDirectory {
  static final String PREFIX = "backlog-agent-";
  static final String OWNER = "owner";

  private WorkDirectory() {}

  /** Removes dead owners' directories under {@code tmp}, then makes this process's own. */
  static Path create(Path tmp) throws IOException {
    removeStale(tmp);
    Path dir = Files.createTempDirectory(tmp, PREFIX);
    Files.writeString(dir.resolve(OWNER), ownerRecord(ProcessHandle.current().pid()), StandardCharsets.US_ASCII);
    return dir;
  }

  /** The directories under {@code tmp} whose owner is dead, removed; returns how many. */
  static int removeStale(Path tmp) {
    int removed = 0;
    int uid = dev.backlogagent.config.FileTrust.effectiveUid();
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(tmp, PREFIX + "*")) {
      for (Path dir : entries) {
        if (isStale(dir, uid)) {
          removed += delete(dir) ? 1 : 0;
        }
      }
    } catch (IOException e) {
      // an unreadable tmp only means nothing is cleaned this time
    }
    return removed;
  }

  private static boolean isStale(Path dir, int ourUid) {
    try {
      PosixFileAttributes attrs = Files.readAttributes(dir, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
      if (!attrs.isDirectory() || ourUid < 0 || uid(dir) != ourUid) {
        return false;
      }
      Path owner = dir.resolve(OWNER);
      if (!Files.isRegularFile(owner, LinkOption.NOFOLLOW_LINKS) || Files.size(owner) > 64) {
        return false;
      }
      String[] record = Files.readString(owner, StandardCharsets.US_ASCII).strip().split(" ");
      long pid = Long.parseLong(record[0]);
      String started = record.length > 1 ? record[1] : "";
      return !ownerRecord(pid).equals(pid + " " + started);
    } catch (IOException | RuntimeException e) {
      return false;
    }
  }

  private static boolean delete(Path dir) {
    try (Stream<Path> walk = Files.walk(dir)) { // does not follow links: a link is removed, not its target
      List<Path> all = walk.sorted(Comparator.reverseOrder()).toList();
      for (Path p : all) {
        Files.deleteIfExists(p);
      }
      return true;
    } catch (IOException | RuntimeException e) {
      return false;
    }
  }

  /** "PID STARTTIME" for a live process (STARTTIME from /proc/PID/stat, field 22), "PID gone" otherwise. */
  static String ownerRecord(long pid) {
    try {
      String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
      String[] after = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
      return pid + " " + after[19]; // field 22 of stat is the 20th after the command
    } catch (IOException | RuntimeException e) {
      return pid + " gone";
    }
  }

  private static int uid(Path p) {
    try {
      return (Integer) Files.getAttribute(p, "unix:uid", LinkOption.NOFOLLOW_LINKS);
    } catch (IOException | RuntimeException e) {
      return -1;
    }
  }
}
