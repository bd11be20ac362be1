package dev.backlogagent.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.backlogagent.testing.FakeBpftrace;
import dev.backlogagent.testing.KernelTests;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** doctor against fake bpftraces: one that exits 0 to everything, one that prints escapes, one that hangs, one others can write. */
class DoctorFaultTest {
  @TempDir Path dir;
  private final StringWriter out = new StringWriter();
  private final StringWriter err = new StringWriter();

  private int doctor(String... args) {
    String[] full = new String[args.length + 1];
    full[0] = "doctor";
    System.arraycopy(args, 0, full, 1, args.length);
    return BacklogAgent.execute(new PrintWriter(out), new PrintWriter(err), full);
  }

  @Test
  void aBpftraceThatExitsZeroToEverythingAttachesNothing() throws Exception {
    Path fake = FakeBpftrace.write(dir.resolve("fake"), "exit 0", "exit 0");
    doctor("--json", "--bpftrace", fake.toString());
    JsonNode doc = new ObjectMapper().readTree(out.toString());
    for (String kind : new String[] {"tracepoint", "kprobe", "fentry"}) {
      JsonNode attach = doc.path("attach").path(kind);
      assertThat(attach.path("works").asBoolean()).as(kind).isFalse();
      assertThat(attach.path("detail").asText()).as(kind).contains("no evidence that it attached");
    }
    // No bpftrace rung: the ladder goes on to the lower rungs (ftrace where tracefs is writable, as here).
    assertThat(doc.path("tier").asText()).isIn("libbpf-tools", "ftrace", "counters");
  }

  @Test
  void whatTheChildPrintsIsEscapedInTheTable() throws Exception {
    Path fake = FakeBpftrace.write(dir.resolve("fake"),
        "printf 'ERROR: \\033[2J\\033]0;owned\\007 cleared\\rhidden\\n' >&2; exit 1", "exit 1");
    doctor("--bpftrace", fake.toString());
    String table = out.toString();
    assertThat(table).doesNotContain("\u001b").doesNotContain("\r").doesNotContain("\u0007");
    assertThat(table).contains("\\e[2J\\e]0;owned\\x07 cleared"); // a \\r ends a line: it can hide nothing
  }

  @Test
  void aHangingAttachIsKilledAndTheMessageSaysTheTimeoutReadmeSays() throws Exception {
    Path fake = FakeBpftrace.write(dir.resolve("fake"), "exec sleep 60", "exit 1");
    doctor("--json", "--bpftrace", fake.toString());
    JsonNode doc = new ObjectMapper().readTree(out.toString());
    assertThat(doc.path("attach").path("tracepoint").path("detail").asText())
        .isEqualTo("bpftrace did not exit within 15 s and was killed");
  }

  @Test
  void asRootAWorldWritableBpftraceIsNeverRun() throws Exception {
    KernelTests.requireRoot();
    Path ran = dir.resolve("ran");
    Path fake = FakeBpftrace.write(dir.resolve("fake"), "touch " + ran + "; exit 0", "touch " + ran);
    Files.setPosixFilePermissions(fake, PosixFilePermissions.fromString("rwxrwxrwx"));
    doctor("--json", "--bpftrace", fake.toString());
    JsonNode doc = new ObjectMapper().readTree(out.toString());
    assertThat(doc.path("bpftrace").path("found").asBoolean()).isFalse();
    assertThat(doc.path("bpftrace").path("detail").asText()).isEqualTo("not run: bpftrace executable " + fake
        + " is writable by group or others; running as root, the agent refuses it (chmod go-w " + fake + ")");
    assertThat(doc.path("attach").path("kprobe").path("detail").asText()).isEqualTo("not tried: bpftrace not trusted");
    // No bpftrace rung: the ladder goes on to the lower rungs (ftrace where tracefs is writable, as here).
    assertThat(doc.path("tier").asText()).isIn("libbpf-tools", "ftrace", "counters");
    assertThat(ran).doesNotExist();
    // trace, forced to a BPF tier, refuses to run it too.
    out.getBuffer().setLength(0);
    int code = BacklogAgent.execute(new PrintWriter(out), new PrintWriter(err), "trace", "--tier", "tracepoint",
        "--bpftrace", fake.toString(), "--duration", "1", "--state", dir.resolve("s.json").toString());
    assertThat(code).isEqualTo(1);
    assertThat(err.toString().strip()).endsWith("is writable by group or others; running as root, the agent refuses it (chmod go-w "
        + fake + ")");
    assertThat(ran).doesNotExist();
  }
}
