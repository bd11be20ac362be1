package dev.backlogagent.bpf;

import static org.assertj.core.api.Assertions.assertThat;

import dev.backlogagent.decode.BpftraceRecord;
import dev.backlogagent.testing.KernelTests;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Running several concerns on the real kernel: combined, and when one of them is broken. */
class TracingTest {
  @TempDir Path dir;

  private static final String TICK = "interval:ms:200 { printf(\"{\\\"ev\\\":\\\"tick\\\"}\\n\"); }\n";
  private static final String COUNT = "tracepoint:sock:inet_sock_set_state { @a = count(); }\nEND { clear(@a); }\n";
  private static final String BROKEN = "kprobe:no_such_kernel_function_here { @b = count(); }\n";

  private Tracing.Launch launch() {
    return new Tracing.Launch(KernelTests.requireCommand("bpftrace"), List.of(), dir, Duration.ofSeconds(60));
  }

  @Test
  void concernsRunCombinedInOneProcessWhenTheyAllAttach() throws Exception {
    KernelTests.assumeKernel("combined programs");
    List<BpftraceRecord> records = new CopyOnWriteArrayList<>();
    try (Tracing tracing = Tracing.start(List.of(
        new BpfProgram(List.of(Concern.LISTEN), TICK), new BpfProgram(List.of(Concern.HANDSHAKES), COUNT)),
        launch(), records::add)) {
      assertThat(tracing.running()).containsExactly(Concern.LISTEN, Concern.HANDSHAKES);
      assertThat(tracing.failures()).isEmpty();
      assertThat(tracing.childPids()).hasSize(1);
      ProgramSupervisorTest.waitUntil(() -> records.stream().anyMatch(r -> r instanceof BpftraceRecord.Printed));
    }
  }

  @Test
  void aProgramThatFailsIsReportedWithItsReasonAndTheRestRuns() throws Exception {
    KernelTests.assumeKernel("partial failure");
    List<BpftraceRecord> records = new CopyOnWriteArrayList<>();
    try (Tracing tracing = Tracing.start(List.of(
        new BpfProgram(List.of(Concern.LISTEN), TICK), new BpfProgram(List.of(Concern.SYN_REFUSED), BROKEN)),
        launch(), records::add)) {
      assertThat(tracing.running()).containsExactly(Concern.LISTEN);
      assertThat(tracing.failures()).singleElement().satisfies(f -> {
        assertThat(f.concern()).isEqualTo(Concern.SYN_REFUSED);
        assertThat(f.reason()).contains("no_such_kernel_function_here");
      });
      ProgramSupervisorTest.waitUntil(() -> records.stream().anyMatch(r -> r instanceof BpftraceRecord.Printed));
    }
  }

  @Test
  void aJvmKilledWithSigkillLeavesNoBpftraceBehind() throws Exception {
    KernelTests.assumeKernel("no orphan after SIGKILL");
    Path jar = Path.of("target/backlog-agent.jar");
    // The packaged jar is the real thing; without it, run from the test classpath.
    List<String> command = Files.exists(jar)
        ? List.of(javaBin(), "-jar", jar.toString(), "trace", "--duration", "60")
        : List.of(javaBin(), "-cp", System.getProperty("java.class.path"), "dev.backlogagent.cli.BacklogAgent", "trace", "--duration", "60");
    Process agent = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(dir.resolve("agent.log").toFile()).start();
    try {
      ProgramSupervisorTest.waitUntil(() -> agent.descendants().anyMatch(TracingTest::isBpftrace)
          && logContains("tracing at tier"));
      List<ProcessHandle> children = agent.descendants().filter(TracingTest::isBpftrace).toList();
      assertThat(children).isNotEmpty();
      agent.destroyForcibly(); // SIGKILL: no shutdown hook runs
      agent.waitFor(10, TimeUnit.SECONDS);
      ProgramSupervisorTest.waitUntil(() -> children.stream().noneMatch(ProcessHandle::isAlive));
    } finally {
      agent.destroyForcibly();
    }
  }

  private boolean logContains(String text) {
    try {
      return Files.readString(dir.resolve("agent.log")).contains(text);
    } catch (java.io.IOException e) {
      return false;
    }
  }

  private static boolean isBpftrace(ProcessHandle p) {
    return p.info().command().map(c -> c.endsWith("bpftrace")).orElse(false);
  }

  private static String javaBin() {
    return Path.of(System.getProperty("java.home"), "bin", "java").toString();
  }

  @Test
  void aProgramStillCompilingWhenTheDeadlineComesIsReportedAsATimeoutNotAsNull() throws Exception {
    // A "bpftrace" that never gets as far as attaching: an emulated guest's 18 s compile, made endless.
    Path slow = dir.resolve("slow-bpftrace");
    Files.writeString(slow, "#!/bin/sh\nexec sleep 60\n");
    Files.setPosixFilePermissions(slow, java.nio.file.attribute.PosixFilePermissions.fromString("rwx------"));
    Tracing.Launch launch = new Tracing.Launch(slow, List.of(), dir, Duration.ofMillis(700));
    try (Tracing tracing = Tracing.start(List.of(
        new BpfProgram(List.of(Concern.LISTEN), TICK), new BpfProgram(List.of(Concern.HANDSHAKES), COUNT)), launch, r -> {})) {
      assertThat(tracing.running()).isEmpty();
      assertThat(tracing.failures()).extracting(Tracing.Failure::concern).containsExactly(Concern.LISTEN, Concern.HANDSHAKES);
      assertThat(tracing.failures()).allSatisfy(f -> assertThat(f.reason()).startsWith("did not attach within 700 ms"));
    }
  }

  @Test
  void theAttachDeadlineGrowsWithTheKernelProbesAttachTimeOnASlowMachine() {
    Duration floor = Duration.ofSeconds(60);
    assertThat(Tracing.attachDeadline(floor, 300)).isEqualTo(floor); // this VM: a one-probe attach in 0.3 s
    assertThat(Tracing.attachDeadline(floor, 3_500)).isEqualTo(Duration.ofSeconds(105)); // TCG guest: 3.5 s
    assertThat(Tracing.attachDeadline(floor, 0)).isEqualTo(floor); // unknown
    // bpftrace's "attached_probes" claim must hold longer where the verifier is slow.
    assertThat(Tracing.Launch.fitting(Path.of("bpftrace"), List.of(), dir, floor, 300, java.util.Map.of()).attachGrace())
        .isEqualTo(ProgramSupervisor.DEFAULT_ATTACH_GRACE);
    assertThat(Tracing.Launch.fitting(Path.of("bpftrace"), List.of(), dir, floor, 3_500, java.util.Map.of()).attachGrace())
        .isEqualTo(Duration.ofMillis(10_500));
  }

  @Test
  void onASlowMachineARefusalThatComesSecondsAfterTheAttachClaimIsStillAFailure() throws Exception {
    // bpftrace prints "attached_probes" before the verifier has seen every probe; in an emulated guest the
    // refusal can come seconds later. Here it comes after 2.5 s: past the 1.5 s grace of a fast machine.
    Path slowVerifier = dir.resolve("slow-verifier-bpftrace");
    Files.writeString(slowVerifier, String.join("\n", "#!/bin/sh",
        "echo '{\"type\": \"attached_probes\", \"data\": {\"probes\": 3}}'",
        "sleep 2.5",
        "echo 'ERROR: Error loading program: tracepoint:sock:inet_sock_set_state (the verifier refused it)' >&2",
        "exit 1", ""));
    Files.setPosixFilePermissions(slowVerifier, java.nio.file.attribute.PosixFilePermissions.fromString("rwx------"));
    Tracing.Launch slowMachine = Tracing.Launch.fitting(slowVerifier, List.of(), dir, Duration.ofSeconds(30), 3_500, java.util.Map.of());
    try (Tracing tracing = Tracing.start(List.of(new BpfProgram(List.of(Concern.HANDSHAKES), COUNT)), slowMachine, r -> {})) {
      assertThat(tracing.running()).isEmpty();
      assertThat(tracing.failures()).singleElement()
          .satisfies(f -> assertThat(f.reason()).contains("Error loading program"));
    }
  }
}
