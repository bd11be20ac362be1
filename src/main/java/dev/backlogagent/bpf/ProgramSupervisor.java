package dev.backlogagent.bpf;

import dev.backlogagent.decode.BpftraceJsonReader;
import dev.backlogagent.decode.BpftraceRecord;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/**
 * Keeps one bpftrace program running: starts it, decodes its stdout into {@link BpftraceRecord}s for the
 * sink, logs its stderr, and when it exits starts it again after a capped, jittered exponential backoff
 * that resets once a run has been stable. Nothing a child does — crash, garbage, refusal to attach — stops
 * the agent; it is counted and reported in {@link #status()}.
 */
public final class ProgramSupervisor implements AutoCloseable {
  private static final System.Logger LOG = System.getLogger(ProgramSupervisor.class.getName());
  private static final Duration STABLE_RUN = Duration.ofSeconds(60);
  /** Debugging aid: every stdout line of every child, appended to this file (env BACKLOG_AGENT_RAW_LOG). */
  private static final String RAW_LOG = System.getenv("BACKLOG_AGENT_RAW_LOG");
  private static final long ATTACH_GRACE_NANOS = Duration.ofMillis(1500).toNanos();

  private final String name;
  private final List<String> command;
  private final Map<String, String> environment;
  private final Consumer<BpftraceRecord> sink;
  private final Backoff backoff;
  private final BpftraceJsonReader reader = new BpftraceJsonReader();
  private final Thread thread;
  private final Object lock = new Object();
  private final CountDownLatch firstOutcome = new CountDownLatch(1);
  private final AtomicLong malformed = new AtomicLong();
  private final AtomicLong lost = new AtomicLong();
  private final Deque<String> recentErrors = new ArrayDeque<>();

  private volatile SupervisorStatus.State state = SupervisorStatus.State.STARTING;
  private volatile boolean attachedThisRun;
  /** When bpftrace said "attached_probes" this run: it says so before attaching, so it is only a claim. */
  private volatile long attachClaimedAt;
  private volatile boolean closed;
  private volatile BpftraceChild child;
  private long restarts;
  private long attachFailures;
  private String lastError;

  public ProgramSupervisor(String name, List<String> command, Consumer<BpftraceRecord> sink, Backoff backoff) {
    this(name, command, Map.of(), sink, backoff);
  }

  /** The same, with these variables added to the child's environment (e.g. BPFTRACE_BTF). */
  public ProgramSupervisor(String name, List<String> command, Map<String, String> environment,
      Consumer<BpftraceRecord> sink, Backoff backoff) {
    this.name = name;
    this.command = List.copyOf(command);
    this.environment = Map.copyOf(environment);
    this.sink = sink;
    this.backoff = backoff;
    // The thread that starts the child lives as long as the child: --pdeathsig follows the parent thread.
    this.thread = new Thread(this::superviseLoop, "bpftrace-" + name);
    this.thread.setDaemon(true);
  }

  public ProgramSupervisor start() {
    thread.start();
    return this;
  }

  /**
   * Waits for the first run to attach or fail. True when every probe attached; false when bpftrace
   * exited first (see {@link #status()} for why) or the time ran out.
   */
  public boolean awaitFirstAttach(Duration timeout) throws InterruptedException {
    firstOutcome.await(timeout.toMillis(), TimeUnit.MILLISECONDS);
    return state == SupervisorStatus.State.ATTACHED;
  }

  public SupervisorStatus status() {
    synchronized (lock) {
      return new SupervisorStatus(name, state, restarts, attachFailures, malformed.get(), lost.get(), lastError);
    }
  }

  /** The pid of the running child, or -1 between runs. */
  public long childPid() {
    BpftraceChild c = child;
    return c == null || !c.isAlive() ? -1 : c.pid();
  }

  private void superviseLoop() {
    while (!closed) {
      attachedThisRun = false;
      attachClaimedAt = 0;
      state = SupervisorStatus.State.STARTING;
      long started = System.nanoTime();
      try {
        child = BpftraceChild.start(name, command, environment, this::onStdout, this::onStderr);
        while (!closed && !child.waitFor(200)) {
          // A probe that cannot attach makes bpftrace exit within moments of its claim; alive after
          // the grace period, the claim holds.
          if (!attachedThisRun && attachClaimedAt != 0 && System.nanoTime() - attachClaimedAt > ATTACH_GRACE_NANOS) {
            confirmAttached();
          }
        }
        if (closed) {
          break;
        }
        child.awaitOutput(1000);
        recordExit(child.exitValue());
      } catch (IOException e) {
        recordError("cannot start bpftrace: " + e.getMessage());
        recordExit(-1);
      } catch (InterruptedException e) {
        break;
      } finally {
        if (child != null && closed) {
          child.close();
        }
      }
      firstOutcome.countDown();
      if (Duration.ofNanos(System.nanoTime() - started).compareTo(STABLE_RUN) >= 0) {
        backoff.reset();
      }
      Duration wait = backoff.next();
      state = SupervisorStatus.State.BACKING_OFF;
      LOG.log(System.Logger.Level.WARNING, "bpftrace program {0} exited; restarting in {1} ms", name, wait.toMillis());
      try {
        synchronized (lock) {
          if (!closed) {
            lock.wait(wait.toMillis());
          }
        }
      } catch (InterruptedException e) {
        break;
      }
      synchronized (lock) {
        if (!closed) {
          restarts++;
        }
      }
    }
    state = SupervisorStatus.State.STOPPED;
    firstOutcome.countDown();
  }

  private void confirmAttached() {
    attachedThisRun = true;
    state = SupervisorStatus.State.ATTACHED;
    synchronized (lock) {
      lastError = null;
    }
    firstOutcome.countDown();
  }

  private void recordExit(int exitValue) {
    synchronized (lock) {
      if (!attachedThisRun) {
        attachFailures++;
        if (lastError == null) {
          lastError = "bpftrace exited with status " + exitValue + " before attaching";
        }
      }
    }
  }

  private void onStdout(String line) {
    if (RAW_LOG != null) {
      rawLog(line);
    }
    if (line.isBlank()) {
      return; // bpftrace ends its output with empty lines
    }
    BpftraceRecord record;
    try {
      record = reader.read(line);
    } catch (BpftraceJsonReader.MalformedLineException e) {
      long n = malformed.incrementAndGet();
      if (Long.bitCount(n) == 1) { // log the 1st, 2nd, 4th, 8th … so a stream of garbage cannot flood the log
        LOG.log(System.Logger.Level.WARNING, "bpftrace program {0}: skipped undecodable line ({1}; {2} so far): {3}",
            name, e.getMessage(), n, abbreviate(line));
      }
      return;
    }
    if (record instanceof BpftraceRecord.Attached) {
      attachClaimedAt = System.nanoTime();
    } else if (!attachedThisRun && attachClaimedAt != 0) {
      confirmAttached(); // output after the claim: the probes are live
    }
    if (record instanceof BpftraceRecord.LostEvents l) {
      lost.addAndGet(l.count());
    }
    try {
      sink.accept(record);
    } catch (RuntimeException e) {
      malformed.incrementAndGet();
      LOG.log(System.Logger.Level.WARNING, "bpftrace program {0}: could not use line: {1}", name, e.toString());
    }
  }

  private void rawLog(String line) {
    try {
      java.nio.file.Files.writeString(java.nio.file.Path.of(RAW_LOG), name + " " + line + "\n",
          java.nio.charset.StandardCharsets.UTF_8, java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
    } catch (IOException e) {
      // a debugging aid must not hurt the agent
    }
  }

  private void onStderr(String line) {
    String text = line.strip();
    if (text.isEmpty() || text.contains("RLIMIT_MEMLOCK")) {
      return; // harmless on 6.x kernels, where BPF memory is charged to the cgroup
    }
    if (text.contains("ERROR") || text.contains("Error:")) {
      recordError(text);
    }
    LOG.log(System.Logger.Level.INFO, "bpftrace program {0}: {1}", name, text);
  }

  private void recordError(String text) {
    synchronized (lock) {
      // The first error of a run says most (later ones are often consequences of it).
      if (lastError == null || attachedThisRun) {
        lastError = text;
      }
      recentErrors.addLast(text);
      if (recentErrors.size() > 5) {
        recentErrors.removeFirst();
      }
    }
  }

  private static String abbreviate(String line) {
    return line.length() > 200 ? line.substring(0, 200) + "…" : line;
  }

  /** Stops the child (SIGTERM, then SIGKILL) and the supervising thread. Idempotent. */
  @Override
  public void close() {
    closed = true;
    synchronized (lock) {
      lock.notifyAll();
    }
    BpftraceChild c = child;
    if (c != null) {
      c.close();
    }
    try {
      thread.join(5000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    state = SupervisorStatus.State.STOPPED;
  }
}
