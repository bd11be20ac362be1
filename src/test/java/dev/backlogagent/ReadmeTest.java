package dev.backlogagent;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** The README is the front door: the test command it shows must be the one CI runs. */
class ReadmeTest {
  @Test
  void theTestCommandInTheReadmeIsTheOneCiRuns() throws Exception {
    String ci = Files.readString(Path.of(".ci/run"));
    String command = ci.lines().filter(l -> l.contains("mvn")).findFirst().orElseThrow().strip();
    assertThat(Files.readString(Path.of("README.md"))).contains("\n" + command + "\n");
  }
}
