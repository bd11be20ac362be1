package dev.backlogagent.ftrace;

import dev.backlogagent.procfs.NetNamespaces;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * The network namespace of the task an event ran in, from {@code /proc/TID/ns/net}, remembered for an
 * interval (an event source reports the same few tasks again and again). Kernel threads (ksoftirqd carries
 * other tasks' softirqs; PF_KTHREAD in field 9 of /proc/TID/stat) and tasks gone answer -1: their namespace
 * says nothing about the connection. One thread's use only.
 */
public final class TaskNamespaces {
  private static final long PF_KTHREAD = 0x00200000L;
  private static final int MAX_REMEMBERED = 4096;
  private final Map<Integer, Long> remembered = new HashMap<>();

  public long of(int tid) {
    Long known = remembered.get(tid);
    if (known != null) {
      return known;
    }
    long netns = -1;
    Path task = Path.of("/proc", Integer.toString(tid));
    try {
      String stat = Files.readString(task.resolve("stat"), StandardCharsets.US_ASCII);
      long flags = Long.parseLong(stat.substring(stat.lastIndexOf(')') + 2).split(" ")[6]);
      if ((flags & PF_KTHREAD) == 0) {
        netns = NetNamespaces.inodeOf(task.resolve("ns/net"));
      }
    } catch (IOException | RuntimeException e) {
      // gone: unknown
    }
    if (remembered.size() < MAX_REMEMBERED) {
      remembered.put(tid, netns);
    }
    return netns;
  }

  /** Forgets everything (task ids are reused). */
  public void clear() {
    remembered.clear();
  }
}
