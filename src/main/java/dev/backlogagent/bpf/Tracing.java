package dev.backlogagent.bpf;

import dev.backlogagent.decode.BpftraceRecord;
import dev.backlogagent.kernel.ChildProcess;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The agent's running BPF programs. All concerns run combined in one bpftrace process; if that process
 * cannot attach, each concern is tried alone, those that fail are reported with bpftrace's reason, and
 * the rest run combined again — so one broken program costs its own concern, not the others.
 */
public final class Tracing implements AutoCloseable {
  private static final System.Logger LOG = System.getLogger(Tracing.class.getName());

  /** A concern that could not run, and why (bpftrace's own error line). */
  public record Failure(Concern concern, String reason) {}

  /**
   * How to run bpftrace: which binary, its positional parameters, where to write program files, how long
   * a program may take to attach, the variables to add to its environment (BPFTRACE_BTF where the kernel's
   * types are not where bpftrace looks), and how long it must outlive its "attached_probes" claim.
   */
  public record Launch(Path bpftrace, List<String> arguments, Path workDirectory, Duration attachTimeout,
      Map<String, String> environment, Duration attachGrace) {
    public Launch {
      environment = Map.copyOf(environment);
    }

    public Launch(Path bpftrace, List<String> arguments, Path workDirectory, Duration attachTimeout) {
      this(bpftrace, arguments, workDirectory, attachTimeout, Map.of());
    }

    public Launch(Path bpftrace, List<String> arguments, Path workDirectory, Duration attachTimeout,
        Map<String, String> environment) {
      this(bpftrace, arguments, workDirectory, attachTimeout, environment, ProgramSupervisor.DEFAULT_ATTACH_GRACE);
    }

    /** A launch whose deadline and grace fit this machine, from the kernel probe's one-probe attach time. */
    public static Launch fitting(Path bpftrace, List<String> arguments, Path workDirectory, Duration floor,
        long probeAttachMillis, Map<String, String> environment) {
      Duration grace = Duration.ofMillis(Math.max(0, probeAttachMillis) * PROBE_GRACE_FACTOR);
      return new Launch(bpftrace, arguments, workDirectory, attachDeadline(floor, probeAttachMillis), environment,
          grace.compareTo(ProgramSupervisor.DEFAULT_ATTACH_GRACE) > 0 ? grace : ProgramSupervisor.DEFAULT_ATTACH_GRACE);
    }
  }

  /** The floor of {@link #attachDeadline}: what a fast machine gets. */
  public static final Duration DEFAULT_ATTACH_TIMEOUT = Duration.ofSeconds(60);
  // A program compiles and attaches in about 5-30 times the time of the kernel probe's one-probe attach
  // (0.3 s and 0.8-2 s here; 3.5 s and 12-32 s in an emulated guest).
  private static final long PROBE_ATTACH_FACTOR = 30;
  // bpftrace claims "attached_probes" before the verifier has seen every probe; a refusal comes within
  // moments here (the grace's 1.5 s floor), within a few one-probe attach times on a slow machine.
  private static final long PROBE_GRACE_FACTOR = 3;
  private static final java.util.regex.Pattern PROGRAM_LOCATION =
      java.util.regex.Pattern.compile("^\\S+\\.bt:[\\d:-]+:\\s*(ERROR:\\s*)?");

  private final List<ProgramSupervisor> supervisors;
  private final List<Concern> running;
  private final List<Failure> failures;
  private final List<ConcernStatus> concerns;

  private Tracing(List<ProgramSupervisor> supervisors, List<Concern> running, List<Failure> failures) {
    this(supervisors, running, failures, List.of());
  }

  private Tracing(List<ProgramSupervisor> supervisors, List<Concern> running, List<Failure> failures,
      List<ConcernStatus> concerns) {
    this.supervisors = supervisors;
    this.running = running;
    this.failures = failures;
    this.concerns = concerns;
  }

  /**
   * How long a program may take to compile and attach on this machine: {@code floor}, or more where the
   * kernel probe's one-probe attach ({@code probeAttachMillis}, 0 when unknown) shows a slow machine, so
   * that an emulated guest does not make a concern look impossible.
   */
  public static Duration attachDeadline(Duration floor, long probeAttachMillis) {
    Duration scaled = Duration.ofMillis(Math.max(0, probeAttachMillis) * PROBE_ATTACH_FACTOR);
    return scaled.compareTo(floor) > 0 ? scaled : floor;
  }

  /**
   * Loads the chosen program of every concern that has one (from {@code programs}, or the jar when null),
   * starts them as {@link #start(List, Launch, Consumer)} does, and keeps one {@link ConcernStatus} per
   * choice: what runs, as which variant, and what cannot, with the reason.
   */
  public static Tracing start(List<ProgramChoice> choices, Path programs, Launch launch, Consumer<BpftraceRecord> sink)
      throws IOException, InterruptedException {
    List<BpfProgram> loaded = new ArrayList<>();
    java.util.Map<Concern, String> unreadable = new java.util.EnumMap<>(Concern.class);
    for (ProgramChoice choice : choices) {
      if (choice.runs()) {
        try {
          loaded.add(BpfProgram.load(choice.concern(), choice.variant(), programs));
        } catch (IOException e) {
          unreadable.put(choice.concern(), "cannot read " + choice.variant().file() + ": " + e.getMessage());
        }
      }
    }
    Tracing started = loaded.isEmpty() ? new Tracing(List.of(), List.of(), List.of()) : start(loaded, launch, sink);
    List<ProgramSupervisor> supervisors = new ArrayList<>(started.supervisors);
    List<Concern> running = new ArrayList<>(started.running);
    List<Failure> failures = new ArrayList<>();
    List<ConcernStatus> concerns = new ArrayList<>();
    for (ProgramChoice choice : choices) {
      String failure = unreadable.get(choice.concern());
      for (Failure f : started.failures) {
        if (f.concern() == choice.concern()) {
          failure = f.reason();
        }
      }
      ConcernStatus status = ConcernStatus.of(choice, failure);
      if (failure != null) {
        // The formats said it fits, bpftrace says no: try the next variant that fits, alone (try-compile).
        for (ProgramVariant fallback : choice.fallbacks()) {
          BpfProgram program;
          try {
            program = BpfProgram.load(choice.concern(), fallback, programs);
          } catch (IOException e) {
            continue; // a programs directory without this variant: the next one, or the failure stands
          }
          Tracing alone = start(List.of(program), launch, sink);
          if (!alone.running.isEmpty()) {
            LOG.log(System.Logger.Level.WARNING, "BPF concern {0}: {1} does not attach ({2}); running {3} instead",
                choice.concern(), choice.variant().file(), failure, fallback.file());
            supervisors.addAll(alone.supervisors);
            running.add(choice.concern());
            status = ConcernStatus.ofFallback(choice, fallback, failure);
            break;
          }
        }
      }
      if (!status.running() && failure != null) {
        failures.add(new Failure(choice.concern(), failure));
      }
      concerns.add(status);
    }
    return new Tracing(List.copyOf(supervisors), List.copyOf(running), List.copyOf(failures), List.copyOf(concerns));
  }

  public static Tracing start(List<BpfProgram> programs, Launch launch, Consumer<BpftraceRecord> sink)
      throws IOException, InterruptedException {
    Files.createDirectories(launch.workDirectory());
    if (programs.isEmpty()) {
      return new Tracing(List.of(), List.of(), List.of());
    }
    BpfProgram combined = BpfProgram.combine(programs);
    ProgramSupervisor all = supervise(combined, launch, sink);
    if (all.awaitFirstAttach(launch.attachTimeout())) {
      return new Tracing(List.of(all), combined.concerns(), List.of());
    }
    String combinedError = whyNotAttached(all, launch.attachTimeout());
    all.close();
    if (programs.size() == 1) {
      return new Tracing(List.of(), List.of(), List.of(new Failure(programs.get(0).concerns().get(0), combinedError)));
    }
    LOG.log(System.Logger.Level.WARNING, "the combined BPF program did not attach ({0}); trying each concern alone", combinedError);

    List<BpfProgram> working = new ArrayList<>();
    List<Failure> failures = new ArrayList<>();
    // Trial runs, all at once (compiling is the slow part), with a sink that drops everything: they only
    // answer "does this attach here?".
    List<ProgramSupervisor> trials = new ArrayList<>();
    try {
      for (BpfProgram program : programs) {
        trials.add(supervise(program, launch, r -> {}));
      }
      for (int i = 0; i < programs.size(); i++) {
        ProgramSupervisor trial = trials.get(i);
        if (trial.awaitFirstAttach(launch.attachTimeout())) {
          working.add(programs.get(i));
        } else {
          for (Concern concern : programs.get(i).concerns()) {
            failures.add(new Failure(concern, whyNotAttached(trial, launch.attachTimeout())));
          }
        }
      }
    } finally {
      trials.forEach(ProgramSupervisor::close);
    }
    for (Failure failure : failures) {
      LOG.log(System.Logger.Level.WARNING, "BPF concern {0} cannot run here: {1}", failure.concern(), failure.reason());
    }
    if (working.isEmpty()) {
      return new Tracing(List.of(), List.of(), List.copyOf(failures));
    }
    BpfProgram rest = BpfProgram.combine(working);
    ProgramSupervisor supervisor = supervise(rest, launch, sink);
    if (supervisor.awaitFirstAttach(launch.attachTimeout()) || working.size() == 1) {
      return new Tracing(List.of(supervisor), rest.concerns(), List.copyOf(failures));
    }
    // Each works alone but not together (a clash between programs): one process each, then.
    supervisor.close();
    LOG.log(System.Logger.Level.WARNING, "the working BPF concerns do not combine ({0}); running one process each",
        supervisor.status().lastError());
    List<ProgramSupervisor> each = new ArrayList<>();
    List<Concern> running = new ArrayList<>();
    for (BpfProgram program : working) {
      ProgramSupervisor one = supervise(program, launch, sink);
      each.add(one);
      running.addAll(program.concerns());
    }
    for (ProgramSupervisor one : each) {
      one.awaitFirstAttach(launch.attachTimeout()); // so that the caller's "tracing" means attached
    }
    return new Tracing(List.copyOf(each), List.copyOf(running), List.copyOf(failures));
  }

  /** Why a program did not attach, in one line; a timeout says so, never null. */
  static String whyNotAttached(ProgramSupervisor supervisor, Duration timeout) {
    SupervisorStatus status = supervisor.status();
    if (status.lastError() != null) {
      // "/tmp/…/synack-123.bt:36:9-44: ERROR: Struct/union …": the temporary file's name says nothing.
      return PROGRAM_LOCATION.matcher(status.lastError()).replaceFirst("");
    }
    if (status.state() == SupervisorStatus.State.STARTING) {
      String within = timeout.toMillis() < 1000 ? timeout.toMillis() + " ms" : timeout.toSeconds() + " s";
      return "did not attach within " + within + " (still compiling or attaching; a slow machine"
          + " needs a longer attach_timeout)";
    }
    return "bpftrace ended before attaching, without a message";
  }

  private static ProgramSupervisor supervise(BpfProgram program, Launch launch, Consumer<BpftraceRecord> sink)
      throws IOException {
    Path file = Files.createTempFile(launch.workDirectory(), program.name().length() > 40 ? "combined-" : program.name() + "-", ".bt",
        PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
    Files.writeString(file, program.source() + ProgramSupervisor.HEARTBEAT_PROBE);
    List<String> command = new ArrayList<>();
    // The child dies with the thread that started it, so a JVM killed with SIGKILL leaves no probe behind.
    ChildProcess.findExecutable("setpriv")
        .ifPresent(setpriv -> command.addAll(List.of(setpriv.toString(), "--pdeathsig", "KILL", "--")));
    command.addAll(List.of(launch.bpftrace().toString(), "-f", "json", "-B", "none", file.toString()));
    command.addAll(launch.arguments());
    return new ProgramSupervisor(program.name(), command, launch.environment(), sink, Backoff.standard(),
        launch.attachGrace(), ProgramSupervisor.SILENCE_LIMIT).start();
  }

  public List<Concern> running() {
    return running;
  }

  public List<Failure> failures() {
    return failures;
  }

  /** One status per concern chosen (empty when started from programs rather than choices). */
  public List<ConcernStatus> concerns() {
    return concerns;
  }

  public List<SupervisorStatus> status() {
    return supervisors.stream().map(ProgramSupervisor::status).toList();
  }

  /** Pids of the running bpftrace children. */
  public List<Long> childPids() {
    return supervisors.stream().map(ProgramSupervisor::childPid).filter(p -> p > 0).toList();
  }

  @Override
  public void close() {
    supervisors.forEach(ProgramSupervisor::close);
  }
}
