package dev.backlogagent.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.backlogagent.testing.Fixtures;
import dev.backlogagent.testing.KernelTests;
import dev.backlogagent.testing.TestNetns;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The same scenarios with bpf(2) refused by a seccomp filter (what systemd's SystemCallFilter=~bpf does),
 * the agent in its own JVM under it: bpftrace and libbpf-tools fail to load anything, and the ladder must
 * fall to ftrace by trying, with the same numbers.
 */
class FtraceUnderSeccompTraceCommandTest extends FtraceTraceCommandTest {
  private static Path denyBpf;

  @BeforeAll
  static void compileWrapper() throws Exception {
    Path gcc = KernelTests.requireCommand("gcc", "the seccomp wrapper");
    Path source = Fixtures.path("deny-bpf.c");
    denyBpf = source.resolveSibling("deny-bpf");
    TestNetns.run(gcc.toString(), "-O2", "-o", denyBpf.toString(), source.toString());
  }

  @Override
  protected List<String> tierArguments() {
    return List.of();
  }

  @Override
  protected RunningTrace startTrace(List<String> args) throws Exception {
    List<String> command = new ArrayList<>(List.of(denyBpf.toString(),
        Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-XX:+UseSerialGC", "-Xmx96m",
        "-XX:TieredStopAtLevel=1", "-cp", System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")),
        "dev.backlogagent.cli.BacklogAgent"));
    command.addAll(args);
    Process process = new ProcessBuilder(command).start();
    List<String> out = drain(process.getInputStream());
    List<String> err = drain(process.getErrorStream());
    return new RunningTrace() {
      public String stdout() {
        return String.join("\n", out);
      }

      public String stderr() {
        return String.join("\n", err);
      }

      public boolean alive() {
        return process.isAlive();
      }

      public int await() throws Exception {
        if (!process.waitFor(120, TimeUnit.SECONDS)) {
          process.destroyForcibly();
        }
        Thread.sleep(200); // the readers' last lines
        return process.exitValue();
      }
    };
  }

  private static List<String> drain(InputStream in) {
    List<String> lines = new CopyOnWriteArrayList<>();
    Thread t = new Thread(() -> {
      try (var reader = new java.io.BufferedReader(new java.io.InputStreamReader(in, StandardCharsets.UTF_8))) {
        for (String line = reader.readLine(); line != null; line = reader.readLine()) {
          lines.add(line);
        }
      } catch (IOException e) {
        // the process ended
      }
    }, "seccomp-trace-reader");
    t.setDaemon(true);
    t.start();
    return lines;
  }

  @Test
  void doctorUnderTheFilterShowsEveryRungAndChoosesFtrace() throws Exception {
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    String out = TestNetns.run(denyBpf.toString(), java, "-cp",
        System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")),
        "dev.backlogagent.cli.BacklogAgent", "doctor", "--json");
    JsonNode doctor = JSON.readTree(out);
    assertThat(doctor.path("tier").asText()).isEqualTo("ftrace");
    JsonNode ladder = doctor.path("ladder");
    assertThat(ladder).hasSize(4);
    assertThat(ladder.get(0).path("rung").asText()).isEqualTo("bpftrace");
    assertThat(ladder.get(0).path("works").asBoolean()).isFalse();
    assertThat(ladder.get(0).path("why").asText()).contains("no BPF program attaches");
    assertThat(ladder.get(1).path("works").asBoolean()).isFalse();
    assertThat(ladder.get(1).path("why").asText()).contains("tcpstates fails");
    assertThat(ladder.get(2).path("chosen").asBoolean()).isTrue();
    assertThat(ladder.get(3).path("works").asBoolean()).isTrue();
  }
}
