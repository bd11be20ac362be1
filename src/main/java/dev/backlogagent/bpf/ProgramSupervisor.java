package dev.backlogagent.bpf;

import dev.backlogagent.decode.BpftraceJsonReader;
import dev.backlogagent.decode.BpftraceRecord;
import dev.backlogagent.kernel.ChildText;
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
 * that resets once a run has been stable. Nothing a child does — crash, garbage, a line too long to hold,
 * refusal to attach, freezing — stops the agent; it is counted and reported in {@link #status()}.
 *
 * <p>A frozen child (stopped by SIGSTOP, or stuck) is found by its silence: the programs the agent writes
 * carry {@link #HEARTBEAT_PROBE}, one line a second, so a child that prints nothing for the silence limit
 * is not running. It is woken (SIGCONT) and stopped with SIGTERM, so that its END prints what the kernel
 * kept counting meanwhile, then restarted.
 */
public final class ProgramSupervisor implements AutoCloseable {
  private static final System.Logger LOG = System.getLogger(ProgramSupervisor.class.getName());
  private static final Duration STABLE_RUN = Duration.ofSeconds(60);
  /** Debugging aid: every stdout line of every child, appended to this file (env BACKLOG_AGENT_RAW_LOG). */
  private static final String RAW_LOG = System.getenv("BACKLOG_AGENT_RAW_LOG");
  /** How long bpftrace must stay alive after claiming "attached_probes" for the claim to hold, where nothing says otherwise. */
  public static final Duration DEFAULT_ATTACH_GRACE = Duration.ofMillis(1500);
  /** What the heartbeat probe prints; the supervisor takes it and hands nothing on. */
  static final String HEARTBEAT = "backlog-agent heartbeat";
  /** A probe that prints {@link #HEARTBEAT} every second, appended to every program the agent runs. */
  public static final String HEARTBEAT_PROBE = "\n// backlog-agent: liveness, one line a second (see ProgramSupervisor)\n"
      + "interval:s:1 { printf(\"" + HEARTBEAT + "\\n\"); }\n";
  /** How long a child with a heartbeat may print nothing before it counts as frozen: ten missed heartbeats. */
  public static final Duration SILENCE_LIMIT = Duration.ofSeconds(10);

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
  private final AtomicLong helperErrors = new AtomicLong();
  private final Deque<String> recentErrors = new ArrayDeque<>();
  private final long attachGraceNanos;
  private final Duration silenceLimit;
  private volatile long lastLineAt;

  private volatile SupervisorStatus.State state = SupervisorStatus.State.STARTING;
  private volatile boolean attachedThisRun;
  /** When bpftrace said "attached_probes" this run: it says so before attaching, so it is only a claim. */
  private volatile long attachClaimedAt;
  private volatile boolean closed;
  private volatile BpftraceChild child;
  private long restarts;
  private long attachFailures;
  private long stalls;
  private long killed;
  private String lastError;

  public ProgramSupervisor(String name, List<String> command, Consumer<BpftraceRecord> sink, Backoff backoff) {
    this(name, command, Map.of(), sink, backoff);
  }

  /** The same, with these variables added to the child's environment (e.g. BPFTRACE_BTF). */
  public ProgramSupervisor(String name, List<String> command, Map<String, String> environment,
      Consumer<BpftraceRecord> sink, Backoff backoff) {
    this(name, command, environment, sink, backoff, DEFAULT_ATTACH_GRACE);
  }

  /**
   * The same, with the time bpftrace must outlive its "attached_probes" claim (it prints it before the
   * verifier has seen every probe: a slow machine needs longer to tell a refusal).
   */
  public ProgramSupervisor(String name, List<String> command, Map<String, String> environment,
      Consumer<BpftraceRecord> sink, Backoff backoff, Duration attachGrace) {
    this(name, command, environment, sink, backoff, attachGrace, null);
  }

  /**
   * The same, also restarting a child that printed nothing for {@code silenceLimit} once attached (null:
   * never); only for programs that carry {@link #HEARTBEAT_PROBE}.
   */
  public ProgramSupervisor(String name, List<String> command, Map<String, String> environment,
      Consumer<BpftraceRecord> sink, Backoff backoff, Duration attachGrace, Duration silenceLimit) {
    this.attachGraceNanos = attachGrace.toNanos();
    this.silenceLimit = silenceLimit;
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
      return new SupervisorStatus(name, state, restarts, attachFailures, malformed.get(), lost.get(), lastError, stalls, killed);
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
        lastLineAt = System.nanoTime();
        child = BpftraceChild.start(name, command, environment, this::onStdout, this::onStderr, this::onOverlong);
        while (!closed && !child.waitFor(200)) {
          // A probe that cannot attach makes bpftrace exit within moments of its claim; alive after
          // the grace period, the claim holds.
          if (!attachedThisRun && attachClaimedAt != 0 && System.nanoTime() - attachClaimedAt > attachGraceNanos) {
            confirmAttached();
          }
          if (attachedThisRun && silenceLimit != null && System.nanoTime() - lastLineAt > silenceLimit.toNanos()) {
            restartFrozen(child);
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

  /** Wakes a silent child so that SIGTERM can run its END (which prints what the kernel counted), then stops it. */
  private void restartFrozen(BpftraceChild frozen) {
    String state = frozen.processState();
    synchronized (lock) {
      stalls++;
    }
    LOG.log(System.Logger.Level.WARNING, "bpftrace program {0} (pid {1}) printed nothing for {2} s (process state {3}): "
        + "frozen; stopping it with SIGCONT and SIGTERM so that it prints its counts, then restarting it",
        name, Long.toString(frozen.pid()), Long.toString(silenceLimit.toSeconds()), state);
    recordError("frozen: printed nothing for " + silenceLimit.toSeconds() + " s (process state " + state + ")");
    frozen.signal("CONT");
    frozen.close();
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
    if (attachedThisRun && exitValue == 128 + 9) {
      // SIGKILL skips END, so the counts since the last flush (each second) died with the child.
      synchronized (lock) {
        killed++;
      }
      LOG.log(System.Logger.Level.WARNING, "bpftrace program {0} was killed (SIGKILL): what it counted since its last "
          + "flush, at most 1 s, is lost", name);
    }
    synchronized (lock) {
      if (!attachedThisRun) {
        attachFailures++;
        if (lastError == null) {
          lastError = "bpftrace exited with status " + exitValue + " before attaching";
        }
      }
    }
  }

  private void onOverlong(long bytes) {
    lastLineAt = System.nanoTime();
    long n = malformed.incrementAndGet();
    if (worthLogging(n)) {
      LOG.log(System.Logger.Level.WARNING, "bpftrace program {0}: skipped a line of {1} bytes, over the limit of {2} ({3} "
          + "skipped lines so far)", name, Long.toString(bytes), Integer.toString(ChildLines.MAX_LINE_BYTES), Long.toString(n));
    }
  }

  private void onStdout(String line) {
    lastLineAt = System.nanoTime();
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
      if (worthLogging(n)) { // the first ten, then the 16th, 32nd … so a stream of garbage cannot flood the log
        LOG.log(System.Logger.Level.WARNING, "bpftrace program {0}: skipped undecodable line ({1}; {2} so far): {3}",
            name, e.getMessage(), n, abbreviate(line));
      }
      return;
    }
    if (record instanceof BpftraceRecord.Printed p && p.text().strip().equals(HEARTBEAT)) {
      // A sign of life, not of the attach: the interval probe can fire before slower probes are attached.
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
    if (record instanceof BpftraceRecord.HelperError h) {
      // One event the program did not count (bpftrace 0.23: most likely a key another CPU had just created).
      // Counted as lost, logged like a bad line: the first ten, then the 16th, 32nd ...
      long n = helperErrors.incrementAndGet();
      lost.incrementAndGet();
      if (worthLogging(n)) {
        LOG.log(System.Logger.Level.WARNING, "bpftrace program {0}: BPF helper {1} failed at program line {2}:{3} ({4}, {5}): "
            + "the event it was counting is lost ({6} so far)", name, h.helper(), h.line(), h.column(),
            h.message() == null ? "no message" : ChildText.printable(h.message()), h.returnCode(), n);
      }
      return;
    }
    try {
      sink.accept(record);
    } catch (RuntimeException e) {
      malformed.incrementAndGet();
      LOG.log(System.Logger.Level.WARNING, "bpftrace program {0}: could not use line: {1}", name, ChildText.printable(e.toString()));
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
    text = ChildText.printable(text);
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

  private static boolean worthLogging(long n) {
    return n <= 10 || Long.bitCount(n) == 1;
  }

  private static String abbreviate(String line) {
    return ChildText.printable(line, 200);
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
