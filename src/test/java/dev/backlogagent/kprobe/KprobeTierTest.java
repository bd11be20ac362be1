package dev.backlogagent.kprobe;

import static org.assertj.core.api.Assertions.assertThat;

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
 * BTF and Debian 6.1's. They run for real under qemu in the kernel matrix (KernelMatrixTest's guest cells: 5.10, 6.1,
 * 6.12), which took over this class's 6.1 guest proof and its script (guest-agent-proof.sh, now scenarios.sh).
 */
class KprobeTierTest {
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
}
