package dev.backlogagent.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.backlogagent.kernel.ChildProcess;
import dev.backlogagent.testing.KernelTests;
import java.io.File;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DoctorCommandTest {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Duration CHILD_TIMEOUT = Duration.ofSeconds(60);

  record Run(int exitCode, String out, String err) {
    JsonNode json() throws IOException {
      return JSON.readTree(out);
    }
  }

  @Test
  void an_unknown_option_is_bad_input() {
    Run run = doctor("--no-such-option");
    assertThat(run.exitCode()).isEqualTo(ExitCode.BAD_INPUT);
    assertThat(run.err()).contains("--no-such-option");
  }

  @Test
  void a_bpftrace_that_does_not_exist_climbs_down_the_ladder_and_says_why_at_each_rung() throws IOException {
    Run run = doctor("--json", "--bpftrace", "/nonexistent");
    assertThat(run.exitCode()).isEqualTo(ExitCode.OK);
    JsonNode doc = run.json();
    // Below bpftrace: libbpf-tools where solisten and tcpstates attach, ftrace where tracefs is writable, counters.
    JsonNode ladder = doc.path("ladder");
    assertThat(ladder.get(0).path("rung").asText()).isEqualTo("bpftrace");
    assertThat(ladder.get(0).path("why").asText())
        .isEqualTo("netlink inventory and /proc counters only: no bpftrace "
            + "(the given bpftrace /nonexistent does not exist)");
    String chosen = null;
    for (JsonNode rung : ladder) {
      if (rung.path("chosen").asBoolean()) {
        chosen = rung.path("rung").asText();
      }
    }
    assertThat(doc.path("tier").asText()).isEqualTo(chosen).isIn("libbpf-tools", "ftrace", "counters");
    assertThat(doc.path("tier_reason").asText()).contains("the given bpftrace /nonexistent does not exist");
    assertThat(doc.path("bpftrace").path("found").asBoolean()).isFalse();
    assertThat(doc.path("attach").path("tracepoint").path("detail").asText()).isEqualTo("not tried: no bpftrace");
    assertThat(run.err()).isEmpty();
  }

  @Test
  void on_the_build_kernel_tracepoints_attach_but_kprobes_and_fentry_do_not() throws IOException {
    KernelTests.assumeKernel("doctor's verdict on the project's tracepoint-only kernel");
    Run run = doctor("--json");
    assertThat(run.exitCode()).as(run.err()).isEqualTo(ExitCode.OK);
    JsonNode doc = run.json();
    assertThat(doc.path("kernel_release").asText()).isEqualTo(firstLine("/proc/sys/kernel/osrelease"));
    assertThat(doc.path("btf").path("available").asBoolean()).isTrue();
    assertThat(doc.path("tracefs").path("mounted").asBoolean()).isTrue();
    assertThat(doc.path("bpftrace").path("version").asText()).matches("v\\d+\\.\\d+\\.\\d+.*");

    JsonNode attach = doc.path("attach");
    assertThat(attach.path("tracepoint").path("works").asBoolean()).as(attach.toString()).isTrue();
    assertThat(attach.path("kprobe").path("works").asBoolean()).isFalse();
    assertThat(attach.path("kprobe").path("detail").asText()).contains("kprobe");
    assertThat(attach.path("fentry").path("works").asBoolean()).isFalse();
    assertThat(attach.path("fentry").path("detail").asText()).containsIgnoringCase("not available");

    assertThat(doc.path("tier").asText()).isEqualTo("tracepoint");
    assertThat(doc.path("tier_reason").asText())
        .startsWith("tracepoint programs: kprobes are not available on this kernel (")
        .contains(attach.path("kprobe").path("detail").asText());
    assertThat(doc.path("sysctls").path("somaxconn").asLong())
        .isEqualTo(Long.parseLong(firstLine("/proc/sys/net/core/somaxconn")));
    assertThat(doc.path("capabilities").path("effective")).isNotEmpty();
    assertThat(doc.path("probe_millis").asLong()).isPositive();
  }

  @Test
  void the_table_aligns_check_result_and_detail_and_ends_with_the_verdict() {
    KernelTests.assumeKernel("doctor's table on the project's tracepoint-only kernel");
    Run run = doctor();
    assertThat(run.exitCode()).isEqualTo(ExitCode.OK);
    List<String> lines = run.out().lines().toList();
    assertThat(lines.get(lines.size() - 1)).startsWith("tier: tracepoint \u2014 tracepoint programs: kprobes are not available");
    String tracepoint = line(lines, "attach tracepoint ");
    String kprobe = line(lines, "attach kprobe ");
    assertThat(tracepoint.indexOf("works")).isEqualTo(kprobe.indexOf("fails"));
    assertThat(tracepoint.indexOf("tracepoint:sock")).isEqualTo(kprobe.indexOf("kprobe:tcp_v4_syn_recv_sock"));
    assertThat(line(lines, "CAP_BPF ")).contains("yes");
  }

  @Test
  void a_user_without_capabilities_is_told_which_are_missing_and_sees_no_stack_trace(@TempDir Path dir)
      throws Exception {
    KernelTests.requireRoot();
    Path setpriv = KernelTests.requireCommand("setpriv");
    // The unprivileged user cannot read root's Maven repository: give it a copy of the classpath.
    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
    String classpath = readableCopyOfClasspath(dir);
    List<String> nobody =
        List.of(setpriv.toString(), "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all");

    ChildProcess.Exit table = runInJvm(nobody, classpath, "doctor");
    ChildProcess.Exit json = runInJvm(nobody, classpath, "doctor", "--json");

    assertThat(table.status()).as(table.stderr()).isEqualTo(ExitCode.OK);
    for (String cap : List.of("CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH")) {
      assertThat(line(table.stdout().lines().toList(), cap + " ")).contains("missing");
    }
    // Not needed (README: the unit does not grant them): reported as absent, never as missing.
    for (String cap : List.of("CAP_NET_ADMIN", "CAP_SYS_RESOURCE")) {
      assertThat(line(table.stdout().lines().toList(), cap + " ")).contains("absent").contains("optional: not needed")
          .doesNotContain("missing");
    }
    String verdict = table.stdout().lines().reduce((a, b) -> b).orElse("");
    assertThat(verdict).startsWith("tier: counters").contains("missing CAP_BPF, CAP_PERFMON");
    for (ChildProcess.Exit exit : List.of(table, json)) {
      assertThat(exit.stdout() + exit.stderr()).doesNotContain("Exception").doesNotContain("\tat ");
    }
    JsonNode doc = JSON.readTree(json.stdout());
    assertThat(doc.path("capabilities").path("effective")).isEmpty();
    assertThat(doc.path("capabilities").path("missing")).hasSize(5);
    assertThat(doc.path("capabilities").path("optional_missing").toString()).isEqualTo("[\"CAP_NET_ADMIN\",\"CAP_SYS_RESOURCE\"]");
    assertThat(doc.path("tier").asText()).isEqualTo("counters");
  }

  @Test
  void where_tracefs_is_not_mounted_doctor_mounts_it_and_says_so() throws Exception {
    KernelTests.assumeKernel("mounting tracefs in a private mount namespace");
    Path unshare = KernelTests.requireCommand("unshare");
    // A private mount namespace: unmounting tracefs there leaves the host's mount alone.
    List<String> withoutTracefs =
        List.of(unshare.toString(), "--mount", "--propagation", "private", "--", "sh", "-c",
            // Only the mount point doctor looks at: a chroot elsewhere may have its own tracefs mounted.
            "umount /sys/kernel/tracing 2>/dev/null; mountpoint -q /sys/kernel/tracing && exit 99; exec \"$@\"",
            "sh");
    ChildProcess.Exit exit = runInJvm(withoutTracefs, System.getProperty("java.class.path"), "doctor", "--json");
    assertThat(exit.status()).as(exit.stderr()).isEqualTo(ExitCode.OK);
    JsonNode tracefs = JSON.readTree(exit.stdout()).path("tracefs");
    assertThat(tracefs.path("mounted").asBoolean()).isTrue();
    assertThat(tracefs.path("mounted_by_doctor").asBoolean()).isTrue();
    assertThat(tracefs.path("detail").asText()).contains("mount -t tracefs nodev /sys/kernel/tracing");
    assertThat(JSON.readTree(exit.stdout()).path("tier").asText()).isEqualTo("tracepoint");
  }

  private static Run doctor(String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    String[] all = Stream.concat(Stream.of("doctor"), Stream.of(args)).toArray(String[]::new);
    int code = BacklogAgent.execute(new PrintWriter(out), new PrintWriter(err), all);
    return new Run(code, out.toString(), err.toString());
  }

  private static ChildProcess.Exit runInJvm(List<String> prefix, String classpath, String... args) throws Exception {
    List<String> command = new ArrayList<>(prefix);
    command.addAll(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-cp", classpath,
        BacklogAgent.class.getName()));
    command.addAll(List.of(args));
    ChildProcess.Exit exit = ChildProcess.run("test-doctor", command, CHILD_TIMEOUT);
    assertThat(exit.timedOut()).as("doctor in a child JVM timed out").isFalse();
    return exit;
  }

  private static String readableCopyOfClasspath(Path dir) throws IOException {
    List<String> copies = new ArrayList<>();
    int n = 0;
    for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) {
      Path source = Path.of(entry);
      if (!Files.exists(source)) {
        continue;
      }
      Path target = dir.resolve(n++ + "-" + source.getFileName());
      if (Files.isDirectory(source)) {
        try (Stream<Path> tree = Files.walk(source)) {
          for (Path p : (Iterable<Path>) tree::iterator) {
            Path copy = target.resolve(source.relativize(p).toString());
            if (Files.isDirectory(p)) {
              Files.createDirectories(copy);
            } else {
              Files.copy(p, copy, StandardCopyOption.REPLACE_EXISTING);
            }
          }
        }
      } else {
        Files.copy(source, target);
      }
      copies.add(target.toString());
    }
    // Copies of directories keep the 700 of a fresh temporary tree's parents nowhere: open them all up.
    try (Stream<Path> tree = Files.walk(dir)) {
      for (Path p : (Iterable<Path>) tree::iterator) {
        Files.setPosixFilePermissions(p, PosixFilePermissions.fromString(Files.isDirectory(p) ? "rwxr-xr-x" : "rw-r--r--"));
      }
    }
    return String.join(File.pathSeparator, copies);
  }

  private static String line(List<String> lines, String prefix) {
    return lines.stream().filter(l -> l.startsWith(prefix)).findFirst().orElseThrow(
        () -> new AssertionError("no line starting with '" + prefix + "' in:\n" + String.join("\n", lines)));
  }

  private static String firstLine(String path) throws IOException {
    try (var in = Files.newInputStream(Path.of(path))) {
      return new String(in.readAllBytes()).lines().findFirst().orElse("").strip();
    }
  }
}
