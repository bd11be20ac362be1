package dev.backlogagent.bpf;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * One run of one bpftrace process. Its stdout and stderr are drained on named threads, line by line,
 * with an explicit charset: a child whose pipe fills up stalls, and a stalled tracer loses events.
 * Closing it stops the child (SIGTERM, then SIGKILL) and waits for the readers.
 */
public final class BpftraceChild implements AutoCloseable {
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
    return start(name, command, Map.of(), stdout, stderr);
  }

  /** The same, with these variables added to the child's environment. */
  public static BpftraceChild start(String name, List<String> command, Map<String, String> environment,
      Consumer<String> stdout, Consumer<String> stderr) throws IOException {
    ProcessBuilder builder = new ProcessBuilder(command).redirectInput(ProcessBuilder.Redirect.PIPE);
    builder.environment().putAll(environment);
    // Every map of a bpftrace process shares this bound (default 4096 keys), and a hist() takes a key per
    // bucket: a few hundred busy listeners would fill it, and a full map drops new keys silently.
    builder.environment().putIfAbsent("BPFTRACE_MAP_KEYS_MAX", "16384");
    Process process = builder.start();
    process.getOutputStream().close();
    Thread out = drain(name + "-stdout", process.getInputStream(), stdout);
    Thread err = drain(name + "-stderr", process.getErrorStream(), stderr);
    return new BpftraceChild(process, out, err);
  }

  private static Thread drain(String threadName, InputStream stream, Consumer<String> lines) {
    Thread t = new Thread(() -> {
      try (BufferedReader reader = new BufferedReader(new InputStreamReader(stream, StandardCharsets.UTF_8))) {
        String line;
        while ((line = reader.readLine()) != null) {
          lines.accept(line);
        }
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

  /** SIGTERM lets bpftrace detach its probes cleanly; SIGKILL if it will not go within two seconds. */
  @Override
  public void close() {
    if (process.isAlive()) {
      process.destroy();
      try {
        if (!process.waitFor(2, TimeUnit.SECONDS)) {
          process.destroyForcibly();
          process.waitFor(2, TimeUnit.SECONDS);
        }
      } catch (InterruptedException e) {
        process.destroyForcibly();
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
