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

  /** How to run bpftrace: which binary, its positional parameters, where to write program files. */
  public record Launch(Path bpftrace, List<String> arguments, Path workDirectory, Duration attachTimeout) {}

  private final List<ProgramSupervisor> supervisors;
  private final List<Concern> running;
  private final List<Failure> failures;

  private Tracing(List<ProgramSupervisor> supervisors, List<Concern> running, List<Failure> failures) {
    this.supervisors = supervisors;
    this.running = running;
    this.failures = failures;
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
    String combinedError = all.status().lastError();
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
            failures.add(new Failure(concern, trial.status().lastError()));
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
    return new ProgramSupervisor(program.name(), command, sink, Backoff.standard(), ProgramSupervisor.SILENCE_LIMIT).start();
  }

  public List<Concern> running() {
    return running;
  }

  public List<Failure> failures() {
    return failures;
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
