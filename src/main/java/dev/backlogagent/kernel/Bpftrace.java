package dev.backlogagent.kernel;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** The bpftrace executable: runs programs given as text and explains, in one line, why a run failed. */
public final class Bpftrace {

  private static final Pattern VERSION = Pattern.compile("bpftrace\\s+(v?\\d[\\w.+~-]*)");
  // "stdin:1:1-22: ERROR: ..." — where in the program text a diagnostic points; not part of the reason.
  private static final Pattern LOCATION = Pattern.compile("^\\S+:\\d+:\\d+(-\\d+)?:\\s*");
  private static final Pattern UNDERLINE = Pattern.compile("^\\s*~+\\s*$");
  private static final Pattern SEVERITY = Pattern.compile("^(ERROR|FATAL|WARNING):\\s*");
  // Printed on every start when RLIMIT_MEMLOCK cannot be raised; harmless on kernels that account BPF memory by memcg.
  private static final String MEMLOCK_NOISE = "couldn't set RLIMIT_MEMLOCK";

  /**
   * The variable that tells bpftrace where the kernel's BTF is. bpftrace 0.17 does not find it on 5.10 although
   * /sys/kernel/btf/vmlinux exists (its lookup by BTF object id fails there), and a kernel without BTF of its own
   * can be given a file taken from its image (the BTFHub way).
   */
  public static final String BTF_VARIABLE = "BPFTRACE_BTF";

  private final Path executable;
  private final Map<String, String> environment;

  public Bpftrace(Path executable) {
    this(executable, Map.of());
  }

  private Bpftrace(Path executable, Map<String, String> environment) {
    this.executable = executable;
    this.environment = environment;
  }

  /** This bpftrace, reading the kernel's BTF from {@code btfFile} (null: wherever bpftrace looks itself). */
  public Bpftrace withBtf(String btfFile) {
    return new Bpftrace(executable, btfFile == null ? Map.of() : Map.of(BTF_VARIABLE, btfFile));
  }

  public Path executable() {
    return executable;
  }

  /** The variables every run of this bpftrace gets (empty, or the BTF file). */
  public Map<String, String> environment() {
    return environment;
  }

  /** Runs {@code bpftrace --version}. */
  public ChildProcess.Exit version(Duration timeout) throws IOException, InterruptedException {
    return ChildProcess.run("bpftrace-version", List.of(executable.toString(), "--version"), timeout);
  }

  /** Runs the program text with {@code bpftrace -e}; {@code name} names the run's threads. */
  public ChildProcess.Exit runProgram(String name, String program, Duration timeout)
      throws IOException, InterruptedException {
    return ChildProcess.run(name, List.of(executable.toString(), "-e", program), environment, timeout);
  }

  /** The version in {@code bpftrace --version} output, e.g. "v0.17.0". */
  public static Optional<String> parseVersion(String output) {
    Matcher m = VERSION.matcher(output);
    return m.find() ? Optional.of(m.group(1)) : Optional.empty();
  }

  /**
   * Why a bpftrace run failed, in one line: its last error, with the library message printed just before it
   * when there is one (e.g. why a probe could not attach). Source echoes, underlines, locations and the
   * RLIMIT_MEMLOCK notice are left out.
   */
  public static String failureReason(ChildProcess.Exit exit) {
    if (exit.timedOut()) {
      return "bpftrace did not exit within " + exit.took().toSeconds() + " s and was killed";
    }
    return failureReason(exit.stderr(), exit.status());
  }

  /** {@link #failureReason(ChildProcess.Exit)} on recorded stderr and exit status. */
  public static String failureReason(String stderr, int status) {
    return ChildText.printable(rawFailureReason(stderr, status));
  }

  private static String rawFailureReason(String stderr, int status) {
    List<String> lines = meaningfulLines(stderr);
    List<String> quiet = new ArrayList<>(lines);
    quiet.removeIf(line -> line.contains(MEMLOCK_NOISE));
    if (!quiet.isEmpty()) {
      lines = quiet;
    }
    int last = -1;
    for (int i = lines.size() - 1; i >= 0 && last < 0; i--) {
      if (lines.get(i).startsWith("ERROR:") || lines.get(i).startsWith("FATAL:")) {
        last = i;
      }
    }
    if (last < 0) {
      return lines.isEmpty() ? exitDescription(status) : stripSeverity(lines.get(lines.size() - 1));
    }
    String reason = stripSeverity(lines.get(last));
    if (last > 0 && !SEVERITY.matcher(lines.get(last - 1)).find()) {
      reason += ": " + lines.get(last - 1);
    }
    return reason;
  }

  private static List<String> meaningfulLines(String stderr) {
    List<String> raw = stderr.lines().map(String::stripTrailing).filter(line -> !line.isBlank()).toList();
    List<String> kept = new ArrayList<>();
    for (int i = 0; i < raw.size(); i++) {
      boolean underline = UNDERLINE.matcher(raw.get(i)).matches();
      boolean echoOfSource = i + 1 < raw.size() && UNDERLINE.matcher(raw.get(i + 1)).matches();
      if (!underline && !echoOfSource) {
        kept.add(LOCATION.matcher(raw.get(i).strip()).replaceFirst(""));
      }
    }
    return kept;
  }

  private static String stripSeverity(String line) {
    return SEVERITY.matcher(line).replaceFirst("").strip();
  }

  private static String exitDescription(int status) {
    if (status > 128) {
      return "bpftrace was killed by signal " + (status - 128) + " without a message";
    }
    return "bpftrace exited with status " + status + " without a message";
  }
}
