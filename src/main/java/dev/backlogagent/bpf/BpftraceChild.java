package dev.backlogagent.bpf;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * One run of one bpftrace process. Its stdout and stderr are drained on named threads, line by line,
 * with an explicit charset: a child whose pipe fills up stalls, and a stalled tracer loses events. A line
 * longer than {@link ChildLines#MAX_LINE_BYTES} (64 KiB on stderr) is dropped as it streams and reported
 * to {@code overlong}, so that no output of a child can exhaust the agent's heap.
 * Closing it stops the child (SIGTERM, then SIGKILL) and waits for the readers.
 */
public final class BpftraceChild implements AutoCloseable {
  /** bpftrace's diagnostics are short; a longer stderr line is not one of them. */
  private static final int STDERR_LINE_BYTES = 64 * 1024;
  private final Process process;
  private final Thread stdoutReader;
  private final Thread stderrReader;

  private BpftraceChild(Process process, Thread stdoutReader, Thread stderrReader) {
    this.process = process;
    this.stdoutReader = stdoutReader;
    this.stderrReader = stderrReader;
  }

  /**
   * Starts the command. The thread that calls this must outlive the child: with
   * {@code setpriv --pdeathsig KILL} the kernel kills the child when that thread ends.
   */
  public static BpftraceChild start(String name, List<String> command, Consumer<String> stdout, Consumer<String> stderr)
      throws IOException {
    return start(name, command, Map.of(), stdout, stderr, bytes -> {});
  }

  /**
   * The same, with these variables added to the child's environment; {@code overlong} hears the length of
   * each line dropped for being longer than the limit.
   */
  public static BpftraceChild start(String name, List<String> command, Map<String, String> environment,
      Consumer<String> stdout, Consumer<String> stderr, Consumer<Long> overlong) throws IOException {
    ProcessBuilder builder = new ProcessBuilder(command).redirectInput(ProcessBuilder.Redirect.PIPE);
    builder.environment().putAll(environment);
    // Every map of a bpftrace process shares this bound (default 4096 keys), and a hist() takes a key per
    // bucket: a few hundred busy listeners would fill it, and a full map drops new keys silently.
    builder.environment().putIfAbsent("BPFTRACE_MAP_KEYS_MAX", "16384");
    Process process = builder.start();
    process.getOutputStream().close();
    Thread out = drain(name + "-stdout", process.getInputStream(), new ChildLines(ChildLines.MAX_LINE_BYTES), stdout, overlong);
    Thread err = drain(name + "-stderr", process.getErrorStream(), new ChildLines(STDERR_LINE_BYTES), stderr, overlong);
    return new BpftraceChild(process, out, err);
  }

  private static Thread drain(String threadName, InputStream stream, ChildLines splitter, Consumer<String> lines,
      Consumer<Long> overlong) {
    Thread t = new Thread(() -> {
      try (stream) {
        splitter.drain(stream, new ChildLines.Sink() {
          @Override
          public void line(String line) {
            lines.accept(line);
          }

          @Override
          public void overlong(long bytes) {
            overlong.accept(bytes);
          }
        });
      } catch (IOException | UncheckedIOException e) {
        // The pipe closed under us: the child is gone, and its exit is handled by the supervisor.
      }
    }, threadName);
    t.setDaemon(true);
    t.start();
    return t;
  }

  public long pid() {
    return process.pid();
  }

  /** The child's state letter from /proc/PID/stat (R, S, D, T for stopped, Z), or "?" when gone. */
  public String processState() {
    try {
      String stat = java.nio.file.Files.readString(java.nio.file.Path.of("/proc", Long.toString(process.pid()), "stat"));
      String[] after = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
      return after[0].equals("T") ? "T (stopped)" : after[0];
    } catch (IOException | RuntimeException e) {
      return "?";
    }
  }

  /** Sends a signal by name (e.g. "CONT") with kill(1); Java's Process offers only TERM and KILL. */
  public void signal(String name) {
    try {
      // The system's kill(1), not whichever PATH finds first: the agent runs as root.
      String kill = java.nio.file.Files.isExecutable(java.nio.file.Path.of("/usr/bin/kill")) ? "/usr/bin/kill" : "/bin/kill";
      Process signal = new ProcessBuilder(kill, "-" + name, Long.toString(process.pid()))
          .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
      signal.waitFor(2, TimeUnit.SECONDS);
    } catch (IOException e) {
      // no kill(1): close() still ends the child with SIGKILL
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  public boolean isAlive() {
    return process.isAlive();
  }

  /** Waits for the child to exit; true when it did within the time. */
  public boolean waitFor(long millis) throws InterruptedException {
    return process.waitFor(millis, TimeUnit.MILLISECONDS);
  }

  public int exitValue() {
    return process.exitValue();
  }

  /** Waits until every line the child wrote has been handed on. */
  public void awaitOutput(long millis) throws InterruptedException {
    stdoutReader.join(millis);
    stderrReader.join(millis);
  }

  /**
   * SIGTERM lets bpftrace detach its probes cleanly and print its maps at END; SIGKILL if it will not go
   * within two seconds. The signals go through the process handle, not {@link Process#destroy()}, which
   * closes our end of the child's stdout at once: the maps it prints on the way out would be lost.
   */
  @Override
  public void close() {
    ProcessHandle handle = process.toHandle();
    if (process.isAlive()) {
      handle.destroy();
      try {
        if (!process.waitFor(2, TimeUnit.SECONDS)) {
          handle.destroyForcibly();
          process.waitFor(2, TimeUnit.SECONDS);
        }
      } catch (InterruptedException e) {
        handle.destroyForcibly();
        Thread.currentThread().interrupt();
      }
    }
    try {
      awaitOutput(1000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
