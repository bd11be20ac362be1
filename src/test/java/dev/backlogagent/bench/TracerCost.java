package dev.backlogagent.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * What a tracer costs, read from the kernel: the CPU of a process tree from /proc/PID/stat, and the
 * in-kernel run time of BPF programs ({@code run_time_ns}, {@code run_cnt}; counted only while
 * {@code kernel.bpf_stats_enabled=1}) found through the prog_id lines of the tracer's /proc/PID/fdinfo.
 * Only the tracer's own programs count: other sessions may share this kernel and load programs of their own.
 */
final class TracerCost {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Path STATS_SYSCTL = Path.of("/proc/sys/kernel/bpf_stats_enabled");
  /** A probe header at column 0 of a bpftrace program; several, comma-separated, make one probe. */
  private static final Pattern PROBE = Pattern.compile(
      "^((?:tracepoint|rawtracepoint|interval|profile|kprobe|kretprobe|kfunc|kretfunc|fentry|fexit|uprobe|uretprobe|usdt|software|hardware):[^\\s{,]+)\\s*,?\\s*$");
  /** The marker the agent writes before each concern when it combines programs into one. */
  private static final Pattern CONCERN = Pattern.compile("^// ---- (\\S+) ----$");
  /** The kernel keeps BPF_OBJ_NAME_LEN - 1 characters of a program's name. */
  private static final int NAME_LEN = 15;

  private TracerCost() {}

  /** utime + stime of one process (all its threads), in clock ticks; -1 when it is gone. */
  static long ticks(long pid) {
    try {
      String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"), StandardCharsets.US_ASCII);
      // comm (field 2) may hold spaces and parentheses: count fields from the last ')'.
      String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
      return Long.parseLong(f[11]) + Long.parseLong(f[12]); // fields 14 and 15
    } catch (IOException | RuntimeException e) {
      return -1;
    }
  }

  /** The CPU ticks of {@code root} and each of its live descendants, by pid. */
  static Map<Long, Long> treeTicks(long root) {
    Map<Long, Long> ticks = new TreeMap<>();
    List<Long> pids = new ArrayList<>();
    pids.add(root);
    ProcessHandle.of(root).ifPresent(h -> h.descendants().forEach(d -> pids.add(d.pid())));
    for (long pid : pids) {
      long t = ticks(pid);
      if (t >= 0) {
        ticks.put(pid, t);
      }
    }
    return ticks;
  }

  /**
   * utime + stime of a JVM's JIT compiler threads ("C1 CompilerThread0", "C2 CompilerThread1", ... cut to 15
   * characters by the kernel), live ones only; 0 for any other process.
   */
  static long jitTicks(long pid) {
    long sum = 0;
    Path tasks = Path.of("/proc", Long.toString(pid), "task");
    try (Stream<Path> list = Files.list(tasks)) {
      for (Path task : list.toList()) {
        try {
          String name = Files.readString(task.resolve("comm"), StandardCharsets.UTF_8).strip();
          if (name.matches("C[12] CompilerThr.*")) {
            String stat = Files.readString(task.resolve("stat"), StandardCharsets.US_ASCII);
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            sum += Long.parseLong(f[11]) + Long.parseLong(f[12]);
          }
        } catch (IOException | RuntimeException e) {
          // the thread ended while we read
        }
      }
    } catch (IOException e) {
      return 0;
    }
    return sum;
  }

  /** The command name of a process, or "" when it is gone. */
  static String comm(long pid) {
    try {
      return Files.readString(Path.of("/proc", Long.toString(pid), "comm"), StandardCharsets.UTF_8).strip();
    } catch (IOException e) {
      return "";
    }
  }

  /** The arguments of a process, or an empty list when it is gone. */
  static List<String> cmdline(long pid) {
    try {
      String raw = Files.readString(Path.of("/proc", Long.toString(pid), "cmdline"), StandardCharsets.UTF_8);
      return raw.isEmpty() ? List.of() : List.of(raw.split("\0"));
    } catch (IOException e) {
      return List.of();
    }
  }

  /** The ids of the BPF programs a process holds open (prog_id: lines of its fdinfo). */
  static Set<Integer> programIds(long pid) throws IOException {
    Set<Integer> ids = new TreeSet<>();
    Path dir = Path.of("/proc", Long.toString(pid), "fdinfo");
    List<Path> fds;
    try (Stream<Path> list = Files.list(dir)) {
      fds = list.toList();
    } catch (NoSuchFileException e) {
      return ids;
    }
    for (Path fd : fds) {
      try {
        for (String line : Files.readAllLines(fd, StandardCharsets.US_ASCII)) {
          if (line.startsWith("prog_id:")) {
            ids.add(Integer.parseInt(line.substring(8).strip()));
          }
        }
      } catch (IOException e) {
        // the fd closed while we read
      }
    }
    return ids;
  }

  /** One BPF program's counters at one moment. */
  record ProgramStat(int id, String type, String name, long runCount, long runTimeNs) {}

  /** {@code bpftool prog show -j}, kept to the given ids. */
  static Map<Integer, ProgramStat> programStats(Set<Integer> ids) throws IOException, InterruptedException {
    Process p = new ProcessBuilder("bpftool", "prog", "show", "-j").redirectError(ProcessBuilder.Redirect.DISCARD).start();
    byte[] out = p.getInputStream().readAllBytes();
    if (!p.waitFor(30, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new IOException("bpftool prog show timed out");
    }
    if (p.exitValue() != 0) {
      throw new IOException("bpftool prog show exited " + p.exitValue());
    }
    Map<Integer, ProgramStat> stats = new TreeMap<>();
    for (JsonNode prog : JSON.readTree(out)) {
      int id = prog.path("id").asInt();
      if (ids.contains(id)) {
        stats.put(id, new ProgramStat(id, prog.path("type").asText(), prog.path("name").asText(),
            prog.path("run_cnt").asLong(0), prog.path("run_time_ns").asLong(0)));
      }
    }
    return stats;
  }

  static String statsEnabled() throws IOException {
    return Files.readString(STATS_SYSCTL, StandardCharsets.US_ASCII).strip();
  }

  static void setStatsEnabled(String value) throws IOException {
    Files.writeString(STATS_SYSCTL, value + "\n", StandardCharsets.US_ASCII);
  }

  /** One attach point of a bpftrace program, in file order, with the concern it belongs to. */
  record AttachPoint(String concern, String probe, String kernelName) {
    String label() {
      return concern + " " + probe;
    }

    /**
     * Whether the kernel's program name is this attach point's: bpftrace 0.17 names a program by the probe's last
     * part cut to 15 characters ({@code inet_sock_set_s}), 0.23 by the whole probe with ':' as '_' and its index
     * ({@code tracepoint_sock_inet_sock_set_state_14}).
     */
    boolean named(String name) {
      return kernelName.equals(name) || name.replaceFirst("_\\d+$", "").equals(probe.replace(':', '_'));
    }
  }

  /**
   * The attach points of a bpftrace program file in order, each with its concern (the agent's
   * {@code // ---- name ----} markers; {@code defaultConcern} before any) and the name the kernel gives its
   * program (the probe's last part, positional parameters replaced, cut to 15 characters).
   */
  static List<AttachPoint> attachPoints(String source, String defaultConcern, List<String> positional) {
    List<AttachPoint> points = new ArrayList<>();
    String concern = defaultConcern;
    for (String line : source.split("\n")) {
      Matcher marker = CONCERN.matcher(line);
      if (marker.matches()) {
        concern = marker.group(1);
        continue;
      }
      Matcher probe = PROBE.matcher(line);
      if (probe.matches()) {
        String full = probe.group(1);
        for (int i = positional.size(); i >= 1; i--) {
          full = full.replace("$" + i, positional.get(i - 1));
        }
        String last = full.substring(full.lastIndexOf(':') + 1);
        String kernel = last.length() > NAME_LEN ? last.substring(0, NAME_LEN) : last;
        points.add(new AttachPoint(concern, full, kernel));
      }
    }
    return points;
  }

  /**
   * Names each program id by the attach point it was loaded for. bpftrace loads one program per attach point,
   * in file order, so ids ascending follow the file; each match is checked against the kernel's (truncated)
   * name, and a program that does not match is labelled {@code ? name}.
   */
  static Map<Integer, String> label(Map<Integer, ProgramStat> programs, List<AttachPoint> points) {
    Map<Integer, String> labels = new HashMap<>();
    int next = 0;
    for (ProgramStat p : new TreeMap<>(programs).values()) {
      int found = -1;
      for (int j = next; j < points.size(); j++) {
        if (points.get(j).named(p.name())) {
          found = j;
          break;
        }
      }
      if (found >= 0) {
        labels.put(p.id(), points.get(found).label());
        next = found + 1;
      } else {
        labels.put(p.id(), "? " + p.type() + " " + p.name());
      }
    }
    return labels;
  }
}
