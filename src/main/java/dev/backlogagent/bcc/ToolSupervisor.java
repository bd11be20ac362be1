package dev.backlogagent.bcc;

import dev.backlogagent.bpf.Backoff;
import dev.backlogagent.kernel.LibbpfToolsProbe;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * Keeps one libbpf-tools program running, as {@code bpf/ProgramSupervisor} keeps a bpftrace: started with
 * {@code setpriv --pdeathsig KILL} (it dies with the agent) and {@code stdbuf -oL} (lines as they come),
 * stdout line by line to the sink, stderr drained on a named thread with its last line kept, and after an
 * exit started again with capped, jittered exponential backoff. A tool is attached once it prints its header.
 */
final class ToolSupervisor implements AutoCloseable {
  private static final System.Logger LOG = System.getLogger(ToolSupervisor.class.getName());

  /** What a tool's supervisor has seen. */
  record Status(String tool, boolean attached, long restarts, String lastError) {}

  private final String tool;
  private final List<String> command;
  private final Consumer<String> lines;
  private final Backoff backoff = Backoff.standard();
  private final Thread thread;
  private final CountDownLatch firstOutcome = new CountDownLatch(1);
  private volatile Process process;
  private volatile boolean closed;
  private volatile boolean attached;
  private volatile String lastError;
  private volatile long restarts;

  ToolSupervisor(Path executable, List<String> arguments, Consumer<String> lines) {
    this.tool = executable.getFileName().toString();
    List<String> c = new ArrayList<>(LibbpfToolsProbe.lineBuffered(executable));
    c.addAll(arguments);
    this.command = List.copyOf(c);
    this.lines = lines;
    // The thread that starts the child lives as long as the child: --pdeathsig follows the parent thread.
    this.thread = new Thread(this::loop, "libbpf-tools-" + tool);
    this.thread.setDaemon(true);
  }

  ToolSupervisor start() {
    thread.start();
    return this;
  }

  /** True once the tool printed its header (attached); false if it exited first or the time ran out. */
  boolean awaitAttach(Duration timeout) throws InterruptedException {
    firstOutcome.await(timeout.toMillis(), TimeUnit.MILLISECONDS);
    return attached;
  }

  Status status() {
    return new Status(tool, attached, restarts, lastError);
  }

  private void loop() {
    while (!closed) {
      boolean headerSeen = false;
      try {
        Process p = new ProcessBuilder(command).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
        process = p;
        Thread err = new Thread(() -> drainErrors(p), "libbpf-tools-" + tool + "-stderr");
        err.setDaemon(true);
        err.start();
        try (BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
          for (String line = out.readLine(); line != null; line = out.readLine()) {
            if (!headerSeen) {
              headerSeen = true;
              attached = true;
              firstOutcome.countDown();
            }
            lines.accept(line);
          }
        }
        p.waitFor();
        err.join(1000);
        if (!closed) {
          LOG.log(System.Logger.Level.WARNING, "{0} exited with status {1}: {2}", tool, p.exitValue(), lastError);
        }
      } catch (IOException e) {
        lastError = "cannot run " + command + ": " + e.getMessage();
      } catch (InterruptedException e) {
        return;
      } catch (RuntimeException e) {
        lastError = tool + ": " + e;
      }
      firstOutcome.countDown();
      if (closed) {
        return;
      }
      restarts++;
      if (headerSeen) {
        backoff.reset();
      }
      try {
        Thread.sleep(backoff.next().toMillis());
      } catch (InterruptedException e) {
        return;
      }
    }
  }

  private void drainErrors(Process p) {
    try (BufferedReader err = new BufferedReader(new InputStreamReader(p.getErrorStream(), StandardCharsets.UTF_8))) {
      for (String line = err.readLine(); line != null; line = err.readLine()) {
        if (!line.isBlank()) {
          lastError = line.strip();
        }
      }
    } catch (IOException e) {
      // the child is gone
    }
  }

  /** Destroys the child, waits, forces, then joins the thread; idempotent. */
  @Override
  public void close() {
    closed = true;
    Process p = process;
    if (p != null) {
      p.destroy();
      try {
        if (!p.waitFor(2, TimeUnit.SECONDS)) {
          p.destroyForcibly();
        }
      } catch (InterruptedException e) {
        p.destroyForcibly();
        Thread.currentThread().interrupt();
      }
    }
    thread.interrupt();
    try {
      thread.join(3000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
