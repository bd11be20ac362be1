package dev.backlogagent.bpf;

import static org.assertj.core.api.Assertions.assertThat;

import dev.backlogagent.kernel.ChildProcess;
import dev.backlogagent.kernel.Tier;
import dev.backlogagent.testing.KernelTests;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every program in both bpftrace dialects the agent meets: this host's bpftrace 0.17 and Debian 13's 0.23
 * (in the project's cached Debian 13 root, src/test/matrix/debian13-root.sh, run on this 6.18 kernel). The
 * tracepoint programs and the tracepoint tier's combined default set are started as the agent starts
 * them and must ATTACH (an attach runs the verifier; compiling does not); the kprobe programs and the
 * kprobe tier's combined set must compile against this kernel's BTF ({@code --emit-elf}), since kprobes
 * cannot attach here. The fentry programs (kprobe/*-kfunc.bt) are left to the guest cells of the kernel
 * matrix: on this kernel neither dialect can even resolve an fentry probe.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class BpftraceDialectsTest {
  private static final Path REPO = Path.of("").toAbsolutePath();
  private static final Duration ATTACH = Duration.ofSeconds(90);

  /** One bpftrace: how to run it and where its program files must live so that it sees them. */
  record Dialect(String name, Path bpftrace, Path workDirectory) {
    @Override
    public String toString() {
      return name;
    }
  }

  private final List<Dialect> dialects = new ArrayList<>();
  private final List<Path> made = new ArrayList<>();

  @BeforeAll
  void findBothDialects() throws Exception {
    KernelTests.assumeKernel("programs in both bpftrace dialects");
    Path hostWork = Files.createTempDirectory("bl-programs-dialect-");
    made.add(hostWork);
    dialects.add(new Dialect("host bpftrace " + version(KernelTests.requireCommand("bpftrace")),
        KernelTests.requireCommand("bpftrace"), hostWork));

    ChildProcess.Exit root = ChildProcess.run("debian13-root",
        List.of(REPO.resolve("src/test/matrix/debian13-root.sh").toString()), Duration.ofMinutes(15));
    KernelTests.require(root.succeeded(), "the Debian 13 root (bpftrace 0.23) could not be made: " + root.stderr().strip());
    // The drop-in shows the root this host's /tmp at the same path: program files go where the host's would.
    Path debian13 = REPO.resolve("bpf/test/bpftrace-debian13.sh");
    Path d13Work = Files.createTempDirectory("bl-programs-dialect-");
    made.add(d13Work);
    String v = version(debian13);
    assertThat(v).as("Debian 13's bpftrace").startsWith("v0.2");
    dialects.add(new Dialect("Debian 13 bpftrace " + v, debian13, d13Work));
  }

  @AfterAll
  void removeWorkDirectories() throws IOException {
    for (Path dir : made) {
      try (Stream<Path> files = Files.walk(dir)) {
        for (Path f : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
          Files.deleteIfExists(f);
        }
      }
    }
  }

  List<Dialect> dialects() {
    return dialects;
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dialects")
  void everyTracepointProgramAndVariantAttachesOnThisKernel(Dialect dialect) throws Exception {
    List<ProgramVariant> tracepointPrograms = new ArrayList<>();
    Map<ProgramVariant, Concern> concernOf = new ConcurrentHashMap<>();
    for (Concern concern : Concern.values()) {
      for (ProgramVariant v : concern.variants()) {
        if (v.tiers().contains(Tier.TRACEPOINT)) {
          tracepointPrograms.add(v);
          concernOf.put(v, concern);
        }
      }
    }
    assertThat(tracepointPrograms).extracting(ProgramVariant::file)
        .contains("drops.bt", "drops-no-rx-sk.bt", "drops-no-reason.bt", "resets.bt", "resets-no-reason.bt", "listen.bt");
    Map<String, String> failures = new ConcurrentHashMap<>();
    // Three at a time: compiling is the slow part, and the machine is shared.
    ExecutorService pool = Executors.newFixedThreadPool(3);
    try {
      List<Future<?>> runs = new ArrayList<>();
      for (ProgramVariant v : tracepointPrograms) {
        runs.add(pool.submit(() -> {
          BpfProgram program = BpfProgram.load(concernOf.get(v), v, REPO.resolve("bpf"));
          try (Tracing t = Tracing.start(List.of(program), launch(dialect), r -> {})) {
            if (!t.failures().isEmpty()) {
              failures.put(v.file(), t.failures().get(0).reason());
            }
          }
          return null;
        }));
      }
      for (Future<?> run : runs) {
        run.get();
      }
    } finally {
      pool.shutdownNow();
    }
    assertThat(failures).as("programs that did not attach with " + dialect).isEmpty();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dialects")
  void theTracepointTiersCombinedDefaultSetAttaches(Dialect dialect) throws Exception {
    // The daemon's default: every concern of the tier, states included, as one bpftrace.
    List<ProgramChoice> choices = ProgramChoice.choose(Tier.TRACEPOINT, false, true, TracepointFormats.ofThisKernel());
    List<BpfProgram> programs = new ArrayList<>();
    for (ProgramChoice c : choices) {
      if (c.runs()) {
        programs.add(BpfProgram.load(c.concern(), c.variant(), REPO.resolve("bpf")));
      }
    }
    assertThat(programs).hasSize(7);
    try (Tracing t = Tracing.start(programs, launch(dialect), r -> {})) {
      assertThat(t.failures()).as("concerns that did not attach combined with " + dialect).isEmpty();
      assertThat(t.childPids()).as("one bpftrace for all").hasSize(1);
      assertThat(t.running()).hasSize(7);
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dialects")
  void theKprobeProgramsAndTheKprobeTiersCombinedSetCompile(Dialect dialect) throws Exception {
    List<BpfProgram> combined = new ArrayList<>();
    for (ProgramChoice c : ProgramChoice.choose(Tier.KPROBE, false, true, TracepointFormats.ofThisKernel())) {
      if (c.runs()) {
        BpfProgram p = BpfProgram.load(c.concern(), c.variant(), REPO.resolve("bpf"));
        combined.add(p);
        if (c.variant().file().startsWith("kprobe/")) {
          assertThat(compile(dialect, p)).as(c.variant().file() + " with " + dialect).isEqualTo("");
        }
      }
    }
    assertThat(combined).extracting(p -> p.concerns().get(0)).contains(Concern.SYN_REFUSED, Concern.ACCEPT_WAIT);
    assertThat(compile(dialect, BpfProgram.combine(combined))).as("the kprobe tier combined, " + dialect).isEqualTo("");
  }

  /**
   * states.bt counts its common transitions in keyless maps (per-CPU arrays: cheaper) and the rest in a keyed
   * map; decoded by the agent, the counts must be those of one map keyed (oldstate, newstate), the program it
   * replaced, run beside it over the same traffic: loopback connections closed by the client, by the server,
   * with a reset, and refused by a closed port. Host-wide, as the daemon counts: other traffic in the window
   * is seen by both (each key may differ by 2 for what arrives while the two stop).
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("dialects")
  void statesCountsEveryTransitionAsOneKeyedMapDoes(Dialect dialect) throws Exception {
    Path shipped = Files.copy(REPO.resolve("bpf/states.bt"), dialect.workDirectory().resolve("states.bt"),
        java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    Path keyed = Files.copy(REPO.resolve("src/test/resources/bench/states-keyed.bt"),
        dialect.workDirectory().resolve("states-keyed.bt"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    // A 60 s interval: within the test only END prints, so no count falls between a print and its clear.
    List<Process> both = new ArrayList<>();
    List<Path> outputs = new ArrayList<>();
    for (Path program : List.of(shipped, keyed)) {
      Path out = dialect.workDirectory().resolve(program.getFileName() + ".jsonl");
      outputs.add(out);
      both.add(new ProcessBuilder(dialect.bpftrace().toString(), "-f", "json", program.toString(), "60")
          .redirectOutput(out.toFile()).redirectError(ProcessBuilder.Redirect.DISCARD).start());
    }
    try {
      for (Path out : outputs) {
        long deadline = System.nanoTime() + ATTACH.toNanos();
        while (!(Files.exists(out) && Files.readString(out).contains("\"attached_probes\""))) {
          assertThat(System.nanoTime()).as("bpftrace attached " + out.getFileName()).isLessThan(deadline);
          Thread.sleep(100);
        }
      }
      Thread.sleep(1000); // bpftrace prints attached_probes just before it attaches
      int each = 100;
      LoopbackLifecycles.run(each);
      Thread.sleep(500);
    } finally {
      for (Process p : both) {
        new ProcessBuilder("kill", "-INT", Long.toString(p.pid())).start().waitFor();
      }
      for (Process p : both) {
        if (!p.waitFor(30, java.util.concurrent.TimeUnit.SECONDS)) {
          p.destroyForcibly();
        }
      }
    }
    Map<String, Long> fromShipped = transitions(outputs.get(0));
    Map<String, Long> fromKeyed = transitions(outputs.get(1));
    // The traffic's own: 4 x 100 connects (CLOSE -> SYN_SENT), 300 established, 300 children.
    assertThat(fromKeyed.getOrDefault("7->2", 0L)).isGreaterThanOrEqualTo(400);
    assertThat(fromKeyed.getOrDefault("10->3", 0L)).isGreaterThanOrEqualTo(300);
    assertThat(fromKeyed.getOrDefault("2->7", 0L)).isGreaterThanOrEqualTo(100);
    assertThat(fromKeyed.getOrDefault("1->7", 0L)).isGreaterThanOrEqualTo(100);
    assertThat(fromShipped.keySet()).as("transitions, " + dialect).isEqualTo(fromKeyed.keySet());
    fromKeyed.forEach((k, n) -> assertThat(fromShipped.get(k)).as(k + " with " + dialect).isBetween(n - 2, n + 2));
  }

  /** The agent's decoding of a bpftrace output: state transitions summed by "from->to". */
  private static Map<String, Long> transitions(Path output) throws Exception {
    dev.backlogagent.decode.BpftraceJsonReader reader = new dev.backlogagent.decode.BpftraceJsonReader();
    dev.backlogagent.decode.TraceEventDecoder decoder = new dev.backlogagent.decode.TraceEventDecoder();
    Map<String, Long> sums = new java.util.TreeMap<>();
    for (String line : Files.readAllLines(output)) {
      if (line.isBlank()) {
        continue;
      }
      for (dev.backlogagent.decode.TraceEvent e : decoder.decode(reader.read(line))) {
        if (e instanceof dev.backlogagent.decode.TraceEvent.StateTransitions t) {
          sums.merge(t.from() + "->" + t.to(), t.count(), Long::sum);
        }
      }
    }
    return sums;
  }

  /** Compiles against this kernel's BTF without attaching; "" when it compiles, else bpftrace's reason. */
  private static String compile(Dialect dialect, BpfProgram program) throws Exception {
    Path source = Files.createTempFile(dialect.workDirectory(), "compile-", ".bt");
    Path elf = dialect.workDirectory().resolve(source.getFileName() + ".elf");
    Files.writeString(source, program.source());
    ChildProcess.Exit exit = ChildProcess.run("bpftrace-compile",
        List.of(dialect.bpftrace().toString(), "--emit-elf", elf.toString(), source.toString(), "1", "100"), ATTACH);
    return exit.succeeded() ? "" : dev.backlogagent.kernel.Bpftrace.failureReason(exit);
  }

  private static Tracing.Launch launch(Dialect dialect) {
    return new Tracing.Launch(dialect.bpftrace(), List.of("1", "100"), dialect.workDirectory(), ATTACH);
  }

  private static String version(Path bpftrace) throws Exception {
    ChildProcess.Exit exit = ChildProcess.run("bpftrace-version", List.of(bpftrace.toString(), "--version"), Duration.ofSeconds(30));
    return dev.backlogagent.kernel.Bpftrace.parseVersion(exit.stdout()).orElse("unknown: " + exit.stderr().strip());
  }
}
