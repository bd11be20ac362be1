package dev.backlogagent.bpf;

import static org.assertj.core.api.Assertions.assertThat;

import dev.backlogagent.decode.BpftraceRecord;
import dev.backlogagent.testing.KernelTests;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Supervision of real bpftrace children on this kernel. */
class ProgramSupervisorTest {
  @TempDir Path dir;

  private static Backoff fast() {
    return new Backoff(Duration.ofMillis(100), Duration.ofMillis(400), 0.2, new Random(1));
  }

  private List<String> bpftrace(String program) throws Exception {
    Path file = dir.resolve("p" + System.nanoTime() + ".bt");
    Files.writeString(file, program);
    return List.of("setpriv", "--pdeathsig", "KILL", "--", "bpftrace", "-f", "json", "-B", "none", file.toString());
  }

  private static long printed(List<BpftraceRecord> records) {
    return records.stream().filter(r -> r instanceof BpftraceRecord.Printed).count();
  }

  @Test
  void aChildKilledWithSigkillIsRestartedAndItsEventsContinue() throws Exception {
    KernelTests.requireRoot();
    KernelTests.requireCommand("bpftrace");
    List<BpftraceRecord> records = new CopyOnWriteArrayList<>();
    try (ProgramSupervisor supervisor = new ProgramSupervisor("tick",
        bpftrace("interval:ms:100 { printf(\"{\\\"ev\\\":\\\"tick\\\"}\\n\"); }"), records::add, fast()).start()) {
      assertThat(supervisor.awaitFirstAttach(Duration.ofSeconds(30))).isTrue();
      long pid = supervisor.childPid();
      waitUntil(() -> printed(records) >= 3);

      ProcessHandle.of(pid).orElseThrow().destroyForcibly();
      waitUntil(() -> supervisor.status().restarts() == 1 && supervisor.status().state() == SupervisorStatus.State.ATTACHED);
      long before = printed(records);
      waitUntil(() -> printed(records) >= before + 3);

      assertThat(supervisor.childPid()).isPositive().isNotEqualTo(pid);
      assertThat(supervisor.status().attachFailures()).isZero();
      long second = supervisor.childPid();
      supervisor.close();
      assertThat(ProcessHandle.of(second).map(ProcessHandle::isAlive).orElse(false)).isFalse();
      assertThat(supervisor.status().state()).isEqualTo(SupervisorStatus.State.STOPPED);
    }
  }

  @Test
  void aProgramThatCannotAttachIsReportedWithBpftracesReason() throws Exception {
    KernelTests.requireRoot();
    KernelTests.requireCommand("bpftrace");
    try (ProgramSupervisor supervisor = new ProgramSupervisor("broken",
        bpftrace("tracepoint:sock:no_such_tracepoint_here { @x = count(); }"), r -> {}, fast()).start()) {
      assertThat(supervisor.awaitFirstAttach(Duration.ofSeconds(30))).isFalse();
      waitUntil(() -> supervisor.status().attachFailures() >= 2);
      SupervisorStatus status = supervisor.status();
      assertThat(status.state()).isNotEqualTo(SupervisorStatus.State.ATTACHED);
      assertThat(status.lastError()).contains("no_such_tracepoint_here");
    }
  }

  @Test
  void undecodableLinesAreCountedAndTheRestStillArrives() throws Exception {
    // A stand-in child (not the kernel): what matters is how the supervisor treats its stdout.
    Path script = dir.resolve("noisy.sh");
    Files.writeString(script, String.join("\n",
        "echo '{\"type\": \"attached_probes\", \"data\": {\"probes\": 1}}'",
        "echo 'garbage'",
        "echo '{\"type\": \"printf\", \"data\": \"{\\\"ev\\\":\\\"a\\\"}\"}'",
        "echo '{\"type\": \"map\", \"data\": {\"@x\": {\"1,2\": 3'",
        "echo '{\"type\": \"lost_events\", \"data\": {\"events\": 7}}'",
        // bpftrace 0.23 in the d13 guest, recorded: a keyed count() whose key another CPU created first
        "echo '{\"type\": \"helper_error\", \"msg\": \"File exists\", \"helper\": \"map_update_elem\", \"retcode\": -17, "
            + "\"line\": 200, \"col\": 75}'",
        "echo '{\"type\": \"printf\", \"data\": \"{\\\"ev\\\":\\\"b\\\"}\"}'",
        "sleep 30", ""));
    List<BpftraceRecord> records = new CopyOnWriteArrayList<>();
    try (ProgramSupervisor supervisor =
        new ProgramSupervisor("noisy", List.of("sh", script.toString()), records::add, fast()).start()) {
      assertThat(supervisor.awaitFirstAttach(Duration.ofSeconds(10))).isTrue();
      waitUntil(() -> printed(records) == 2);
      waitUntil(() -> supervisor.status().lostEvents() == 7 + 1);
      assertThat(supervisor.status().malformedLines()).as("a helper error is an event lost, not a bad line").isEqualTo(2);
      assertThat(records).noneMatch(r -> r instanceof BpftraceRecord.HelperError);
      assertThat(records).filteredOn(r -> r instanceof BpftraceRecord.Printed)
          .extracting(r -> ((BpftraceRecord.Printed) r).text()).containsExactly("{\"ev\":\"a\"}", "{\"ev\":\"b\"}");
    }
  }

  @Test
  void aMissingBpftraceIsAnAttachFailureNotACrash() throws Exception {
    try (ProgramSupervisor supervisor = new ProgramSupervisor("absent",
        List.of("/nonexistent/bpftrace", "x.bt"), r -> {}, fast()).start()) {
      assertThat(supervisor.awaitFirstAttach(Duration.ofSeconds(5))).isFalse();
      assertThat(supervisor.status().lastError()).startsWith("cannot start bpftrace: ").contains("/nonexistent/bpftrace");
    }
  }

  static void waitUntil(java.util.function.BooleanSupplier condition) throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("condition not met within 30 s");
      }
      Thread.sleep(50);
    }
  }
}
