package dev.backlogagent.kernel;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

/**
 * Tries the ftrace tier's rung: makes a tracefs instance named as the agent's are (so that a probe killed
 * half-way is cleaned like a killed agent's), enables {@code sock:inet_sock_set_state} there with a
 * filter, and removes it. Works where BPF is refused (a seccomp filter on bpf(2), lockdown, no CAP_BPF) as
 * long as tracefs is mounted and writable.
 */
final class FtraceProbe {

  private FtraceProbe() {}

  static HostCapabilities.FtraceCheck check() {
    long start = System.nanoTime();
    Path root = TracefsRoots.forInstances().orElse(null);
    if (root == null) {
      return new HostCapabilities.FtraceCheck(false, null, "no tracefs with instances at " + TracefsRoots.ROOTS.get(0), 0);
    }
    long pid = ProcessHandle.current().pid();
    Path instance = root.resolve("instances").resolve("backlog-agent-" + pid + "-" + startTime(pid) + "-"
        + Long.toHexString(System.nanoTime() & 0xffffffffL));
    try {
      Files.createDirectory(instance);
    } catch (IOException e) {
      return new HostCapabilities.FtraceCheck(false, root.toString(), "cannot make a tracefs instance: " + reason(e), millis(start));
    }
    try {
      Path event = instance.resolve("events/sock/inet_sock_set_state");
      if (!Files.isDirectory(event)) {
        return new HostCapabilities.FtraceCheck(false, root.toString(), "no sock:inet_sock_set_state event", millis(start));
      }
      write(event.resolve("filter"), "newstate == 10");
      write(event.resolve("enable"), "1");
      write(event.resolve("enable"), "0");
      return new HostCapabilities.FtraceCheck(true, root.toString(),
          "instance made, sock:inet_sock_set_state enabled with a filter, removed", millis(start));
    } catch (IOException e) {
      return new HostCapabilities.FtraceCheck(false, root.toString(), "cannot enable a trace event: " + reason(e), millis(start));
    } finally {
      try {
        Files.deleteIfExists(instance);
      } catch (IOException e) {
        // the next agent's start removes it (its owner, this process, will be gone)
      }
    }
  }

  private static String startTime(long pid) {
    try {
      String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"), StandardCharsets.US_ASCII);
      return stat.substring(stat.lastIndexOf(')') + 2).split(" ")[19];
    } catch (IOException | RuntimeException e) {
      return "0";
    }
  }

  private static void write(Path file, String text) throws IOException {
    Files.write(file, (text + "\n").getBytes(StandardCharsets.US_ASCII), StandardOpenOption.WRITE);
  }

  private static long millis(long start) {
    return (System.nanoTime() - start) / 1_000_000;
  }

  private static String reason(IOException e) {
    return e instanceof FileSystemException f && f.getReason() != null ? f.getReason()
        : e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
  }
}
