package dev.backlogagent.kernel;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * One run of a child process whose output fits in memory: started, drained, awaited with a timeout, destroyed.
 *
 * <p>The child is started under {@code setpriv --pdeathsig KILL --} when setpriv exists, so that a JVM killed
 * with SIGKILL leaves no bpftrace, and so no BPF program, behind. The kernel sends that signal when the
 * <em>thread</em> that started the child ends, not the process: start a long-lived child from a thread that
 * lives as long as the child should.
 */
public final class ChildProcess implements AutoCloseable {

  /** How a run ended: exit status (128 + signal when killed), what it printed, and whether it was cut short. */
  public record Exit(int status, String stdout, String stderr, boolean timedOut, Duration took) {
    public boolean succeeded() {
      return !timedOut && status == 0;
    }
  }

  // Beyond this a run is not the short command this class is for; the rest is drained and dropped.
  private static final int MAX_CAPTURED_BYTES = 1 << 20;
  private static final Duration GRACE = Duration.ofSeconds(1);
  private static final List<Path> SYSTEM_DIRS =
      List.of(Path.of("/usr/sbin"), Path.of("/usr/bin"), Path.of("/sbin"), Path.of("/bin"), Path.of("/usr/local/sbin"),
          Path.of("/usr/local/bin"));

  private final Process process;
  private final long startNanos;
  private final ByteArrayOutputStream stdout = new ByteArrayOutputStream();
  private final ByteArrayOutputStream stderr = new ByteArrayOutputStream();
  private final Thread stdoutReader;
  private final Thread stderrReader;
  private boolean closed;

  private ChildProcess(String name, Process process) {
    this.process = process;
    this.startNanos = System.nanoTime();
    this.stdoutReader = drain(name + "-stdout", process.getInputStream(), stdout);
    this.stderrReader = drain(name + "-stderr", process.getErrorStream(), stderr);
  }

  /** Starts {@code command}; {@code name} names the reader threads (e.g. "bpftrace-kprobe"). */
  public static ChildProcess start(String name, List<String> command) throws IOException {
    return start(name, command, Map.of());
  }

  /** Starts {@code command} with these variables added to this process's environment. */
  public static ChildProcess start(String name, List<String> command, Map<String, String> environment) throws IOException {
    List<String> full = new ArrayList<>();
    findExecutable("setpriv").ifPresent(setpriv -> full.addAll(List.of(setpriv.toString(), "--pdeathsig", "KILL", "--")));
    full.addAll(command);
    ProcessBuilder builder = new ProcessBuilder(full).redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
    builder.environment().putAll(environment);
    return new ChildProcess(name, builder.start());
  }

  /** Starts {@code command}, waits at most {@code timeout} for it to exit, and cleans up. */
  public static Exit run(String name, List<String> command, Duration timeout) throws IOException, InterruptedException {
    return run(name, command, Map.of(), timeout);
  }

  /** {@link #run(String, List, Duration)} with these variables added to the environment. */
  public static Exit run(String name, List<String> command, Map<String, String> environment, Duration timeout)
      throws IOException, InterruptedException {
    try (ChildProcess child = start(name, command, environment)) {
      return child.await(timeout);
    }
  }

  /** Waits for the child to exit; when {@code timeout} passes first, destroys it and reports a timeout. */
  public Exit await(Duration timeout) throws InterruptedException {
    boolean exited = process.waitFor(timeout.toNanos(), TimeUnit.NANOSECONDS);
    if (!exited) {
      close();
    }
    joinReaders();
    Duration took = Duration.ofNanos(System.nanoTime() - startNanos);
    int status = exited ? process.exitValue() : -1;
    return new Exit(status, text(stdout), text(stderr), !exited, took);
  }

  /** Destroys the child if it still runs (SIGTERM, then SIGKILL after a grace period) and joins the readers. */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    try {
      if (process.isAlive()) {
        process.destroy();
        if (!process.waitFor(GRACE.toMillis(), TimeUnit.MILLISECONDS)) {
          process.destroyForcibly();
          process.waitFor(GRACE.toMillis(), TimeUnit.MILLISECONDS);
        }
      }
      joinReaders();
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
  }

  /** The first executable file called {@code name} on PATH or in the usual system directories. */
  public static Optional<Path> findExecutable(String name) {
    List<Path> dirs = new ArrayList<>();
    String path = System.getenv("PATH");
    if (path != null) {
      for (String dir : path.split(File.pathSeparator)) {
        if (!dir.isEmpty()) {
          dirs.add(Path.of(dir));
        }
      }
    }
    dirs.addAll(SYSTEM_DIRS);
    for (Path dir : dirs) {
      Path candidate = dir.resolve(name);
      if (Files.isRegularFile(candidate) && Files.isExecutable(candidate)) {
        return Optional.of(candidate);
      }
    }
    return Optional.empty();
  }

  private void joinReaders() throws InterruptedException {
    // A grandchild holding the pipes open must not hang us: the readers are daemons, left to finish alone.
    stdoutReader.join(GRACE.toMillis());
    stderrReader.join(GRACE.toMillis());
  }

  private static String text(ByteArrayOutputStream buffer) {
    synchronized (buffer) {
      return buffer.toString(StandardCharsets.UTF_8);
    }
  }

  private static Thread drain(String name, InputStream in, ByteArrayOutputStream into) {
    Thread reader =
        new Thread(
            () -> {
              byte[] chunk = new byte[8192];
              try (in) {
                int n;
                while ((n = in.read(chunk)) != -1) {
                  synchronized (into) {
                    int room = MAX_CAPTURED_BYTES - into.size();
                    into.write(chunk, 0, Math.max(0, Math.min(n, room)));
                  }
                }
              } catch (IOException e) {
                // The pipe closed under us because the child was destroyed: what was read is what there is.
              }
            },
            name);
    reader.setDaemon(true);
    reader.start();
    return reader;
  }
}
