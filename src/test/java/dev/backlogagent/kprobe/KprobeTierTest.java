package dev.backlogagent.kprobe;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.backlogagent.testing.Fixtures;
import dev.backlogagent.testing.KernelTests;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The kprobe/fentry tier, which this machine's kernel cannot attach: type-checked here against this kernel's
 * BTF and Debian 6.1's, and run for real on Debian's 6.1 kernel booted under qemu (src/test/qemu/).
 */
class KprobeTierTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static String kernelVersion;

  @BeforeAll
  static void setUpGuestKernel() throws Exception {
    KernelTests.assumeKernel("the kprobe tier");
    // Installs Debian's 6.1 kernel, qemu and an initrd with 9p when missing (about a minute the first time).
    Run setup = run(900, "bash", "src/test/qemu/setup.sh");
    assertThat(setup.status).as("setup.sh: %s", setup.output).isZero();
    String[] lines = setup.output.strip().split("\n");
    kernelVersion = lines[lines.length - 1].strip();
  }

  record Run(int status, String output) {}

  private static Run run(int seconds, String... command) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    StringBuilder out = new StringBuilder();
    Thread reader = new Thread(() -> {
      try {
        out.append(new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
      } catch (IOException e) {
        // the process was killed
      }
    });
    reader.start();
    if (!p.waitFor(seconds, TimeUnit.SECONDS)) {
      p.destroyForcibly();
    }
    reader.join(5000);
    return new Run(p.isAlive() ? -1 : p.exitValue(), out.toString());
  }

  @Test
  void everyKprobeProgramTypeChecksAgainstThisKernelAndDebian61() throws Exception {
    Path btf = Path.of("/var/cache/backlog-agent-qemu/btf-" + kernelVersion);
    List<String> command = new ArrayList<>(List.of("bash", "src/test/qemu/compile-check.sh"));
    if (Files.isReadable(btf)) {
      command.addAll(List.of("-b", btf.toString()));
    }
    Run check = run(600, command.toArray(String[]::new));
    assertThat(check.status).as(check.output).isZero();
    for (String program : List.of("synrefused.bt", "acceptwait.bt")) {
      assertThat(check.output).as(check.output).containsPattern("PASS \\S*/" + program + " running-kernel");
      if (Files.isReadable(btf)) {
        assertThat(check.output).containsPattern("PASS \\S*/" + program + " \\S*btf-" + kernelVersion);
      }
    }
    assertThat(check.output).doesNotContain("FAIL");
  }

  @Test
  void onDebian61TheAgentPicksTheKprobeTierAndAttributesAnAcceptQueueOverflowToItsListener() throws Exception {
    Path fixtures = Fixtures.path("listener.py").getParent();
    Run guest = run(600, "bash", "src/test/qemu/run-in-guest.sh", "-t", "540", "--",
        Path.of("src/test/qemu/guest-agent-proof.sh").toAbsolutePath().toString(),
        // Surefire runs tests through a manifest-only jar; the real classpath is in this property.
        System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")), fixtures.toString());
    Files.writeString(Path.of("target", "kprobe-guest.out"), guest.output); // for a person reading a failure
    assertThat(guest.status).as(guest.output).isZero();

    JsonNode doctor = null;
    JsonNode listener = null;
    String ss = null;
    long overflowsBefore = -1;
    long overflowsAfter = -1;
    StringBuilder traceErr = new StringBuilder();
    List<JsonNode> trace = new ArrayList<>();
    for (String line : guest.output.split("\n")) {
      line = line.replace("\r", "");
      if (line.startsWith("DOCTOR ")) {
        doctor = JSON.readTree(line.substring(7));
      } else if (line.startsWith("LISTENER ")) {
        listener = JSON.readTree(line.substring(9));
      } else if (line.startsWith("SS ")) {
        ss = line.substring(3);
      } else if (line.startsWith("NSTAT BTcpExtListenOverflows ")) {
        overflowsBefore = Long.parseLong(line.substring(29).strip());
      } else if (line.startsWith("NSTAT ATcpExtListenOverflows ")) {
        overflowsAfter = Long.parseLong(line.substring(29).strip());
      } else if (line.startsWith("TRACE_ERR ")) {
        traceErr.append(line.substring(10)).append('\n');
      } else if (line.startsWith("TRACE {")) {
        trace.add(JSON.readTree(line.substring(6)));
      }
    }
    String context = guest.output;
    assertThat(doctor).as(context).isNotNull();
    assertThat(doctor.path("tier").asText()).as(context).isEqualTo("kprobe");
    assertThat(doctor.path("attach").path("kprobe").path("works").asBoolean()).isTrue();
    assertThat(traceErr.toString()).as(context).contains("tracing at tier kprobe").containsPattern("SYN_REFUSED(_FENTRY)?");

    int port = 8080;
    long pid = listener.path("pid").asLong();
    List<JsonNode> starts = trace.stream().filter(t -> t.path("type").asText().equals("overflow_start") && t.path("port").asInt() == port).toList();
    assertThat(starts).as(context).isNotEmpty().allSatisfy(s -> {
      assertThat(s.path("reason").asText()).isEqualTo("accept");
      assertThat(s.path("queue").asLong()).isEqualTo(5);
      assertThat(s.path("backlog").asLong()).isEqualTo(4);
      assertThat(s.path("pid").asLong()).isEqualTo(pid);
    });
    List<JsonNode> overflows = trace.stream().filter(t -> t.path("type").asText().equals("accept_queue_overflow") && t.path("port").asInt() == port).toList();
    assertThat(overflows).as(context).isNotEmpty().allSatisfy(o -> {
      assertThat(o.path("pid").asLong()).isEqualTo(pid);
      assertThat(o.path("address").asText()).isEqualTo("127.0.0.1");
      assertThat(o.path("backlog").asLong()).isEqualTo(4);
    });
    long refused = overflows.stream().mapToLong(o -> o.path("drops").asLong()).sum();
    assertThat(refused).as(context).isPositive().isEqualTo(overflowsAfter - overflowsBefore);
    assertThat(ss).as(context).contains("127.0.0.1:8080");
  }
}
