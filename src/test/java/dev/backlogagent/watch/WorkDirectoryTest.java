package dev.backlogagent.watch;

import static org.assertj.core.api.Assertions.assertThat;

import dev.backlogagent.testing.DaemonProcess;
import dev.backlogagent.testing.KernelTests;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Scratch directories of agents that died by SIGKILL are removed at the next start; live agents' are kept. */
class WorkDirectoryTest {
  @TempDir Path tmp;

  @Test
  void onlyDirectoriesWhoseOwnerIsDeadAreRemoved() throws Exception {
    Process sleeper = new ProcessBuilder("sleep", "30").start();
    String deadRecord = WorkDirectory.ownerRecord(sleeper.pid());
    sleeper.destroyForcibly();
    sleeper.waitFor(5, TimeUnit.SECONDS);
    Path dead = dir("backlog-agent-dead", deadRecord);
    Files.writeString(dead.resolve("combined-1.bt"), "BEGIN {}");
    Path live = dir("backlog-agent-live", WorkDirectory.ownerRecord(ProcessHandle.current().pid()));
    // A live pid that is not the owner any more (the pid was reused): the start time differs.
    Path reused = dir("backlog-agent-reused", ProcessHandle.current().pid() + " 1");
    Path unknown = Files.createDirectory(tmp.resolve("backlog-agent-legacy")); // no owner record: not ours to judge
    Path other = dir("something-else", deadRecord);
    Path target = Files.createDirectory(tmp.resolve("target"));
    Files.writeString(target.resolve("keep"), "x");
    Path link = Files.createSymbolicLink(tmp.resolve("backlog-agent-link"), target);

    assertThat(WorkDirectory.removeStale(tmp)).isEqualTo(2);
    assertThat(dead).doesNotExist();
    assertThat(reused).doesNotExist();
    assertThat(live).isDirectory();
    assertThat(unknown).isDirectory();
    assertThat(other).isDirectory();
    assertThat(link).isSymbolicLink();
    assertThat(target.resolve("keep")).exists();
  }

  @Test
  void aDaemonKilledWithSigkillLeavesADirectoryTheNextStartRemoves() throws Exception {
    KernelTests.assumeKernel("a daemon killed with SIGKILL");
    Path config = DaemonProcess.config(Files.createDirectories(tmp.resolve("etc")), """
        tier: counters
        state_file: %s
        exporters: {prometheus: {enabled: false}}
        """.formatted(tmp.resolve("state.json")));
    Path left;
    try (DaemonProcess first = DaemonProcess.start(Map.of(), "--config", config.toString())) {
      first.awaitStarted();
      left = ownedBy(first.pid());
      first.signal("KILL");
      first.awaitExit(Duration.ofSeconds(10));
    }
    assertThat(left).as("SIGKILL leaves the directory").isDirectory();
    try (DaemonProcess second = DaemonProcess.start(Map.of(), "--config", config.toString())) {
      second.awaitStarted();
      assertThat(left).as("the next start removed it").doesNotExist();
      assertThat(ownedBy(second.pid())).isDirectory();
      second.signal("TERM");
      second.awaitExit(Duration.ofSeconds(10));
    }
  }

  private static Path ownedBy(long pid) throws Exception {
    try (Stream<Path> dirs = Files.list(Path.of(System.getProperty("java.io.tmpdir")))) {
      List<Path> found = dirs.filter(d -> d.getFileName().toString().startsWith("backlog-agent-"))
          .filter(d -> {
            try {
              return Files.readString(d.resolve("owner")).startsWith(pid + " ");
            } catch (Exception e) {
              return false;
            }
          }).toList();
      assertThat(found).hasSize(1);
      return found.get(0);
    }
  }

  private Path dir(String name, String owner) throws Exception {
    Path d = Files.createDirectory(tmp.resolve(name));
    Files.writeString(d.resolve("owner"), owner);
    return d;
  }
}
