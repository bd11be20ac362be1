package dev.backlogagent.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.backlogagent.testing.KernelTests;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What a fault suite fed the configuration loader: aliases, FIFOs, devices, huge files, a writable bpftrace. */
class ConfigHardeningTest {
  private final ConfigLoader loader = new ConfigLoader(new FileTrust(false));
  @TempDir Path dir;

  @Test
  void yamlAliasesAreResolvedToTheValueTheirAnchorNames() throws Exception {
    AgentConfig c = loader.parse("c", """
        interval: &m 30s
        incidents: {quiet_period: *m}
        listeners: &l {ports: [80, 443]}
        """);
    assertThat(c.incidents().quietPeriod()).isEqualTo(Duration.ofSeconds(30));
    assertThat(c.interval()).isEqualTo(Duration.ofSeconds(30));
    assertThat(c.listeners().ports()).containsExactly(80, 443);
  }

  @Test
  void anAliasWithoutAnchorAndAnAliasBombAreRefusedInOneLine() {
    assertThatThrownBy(() -> loader.parse("c", "incidents: {quiet_period: *m}\n"))
        .isInstanceOf(ConfigException.class).hasMessageStartingWith("c: not valid YAML at line 1: alias *m names no anchor")
        .hasMessageNotContaining("\n");
    StringBuilder bomb = new StringBuilder("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i < 9; i++) {
      bomb.append("a").append(i).append(": &a").append(i).append(" [")
          .append(String.join(", ", java.util.Collections.nCopies(10, "*a" + (i - 1)))).append("]\n");
    }
    assertThatThrownBy(() -> loader.parse("c", bomb.toString()))
        .isInstanceOf(ConfigException.class).hasMessageContaining("more than 100000 values once aliases are resolved");
  }

  @Test
  void listenersMaxIsCappedByWhatTheHeapCanExport() throws Exception {
    assertThat(loader.parse("c", "listeners: {max: 750}\n").listeners().max()).isEqualTo(AgentConfig.Listeners.MAX_EXPORTED);
    assertThatThrownBy(() -> loader.parse("c", "listeners: {max: 751}\n")).isInstanceOf(ConfigException.class)
        .hasMessage("c: key 'listeners.max': must be between 1 and 750 (what the agent's heap can export; see "
            + "docs/hardening.md), got 751");
  }

  @Test
  void aDuplicatedKeyIsStillRefused() {
    assertThatThrownBy(() -> loader.parse("c", "interval: 1s\ninterval: 2s\n"))
        .isInstanceOf(ConfigException.class).hasMessageContaining("'interval'").hasMessageNotContaining("\n");
  }

  @Test
  void aFifoIsRefusedAtOnceInsteadOfHangingTheStart() throws Exception {
    KernelTests.requireCommand("mkfifo");
    Path fifo = dir.resolve("config.yaml");
    new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor(5, TimeUnit.SECONDS);
    assertThat(Files.exists(fifo)).isTrue();
    CompletableFuture<Throwable> load = CompletableFuture.supplyAsync(() -> {
      try {
        loader.load(fifo);
        return null;
      } catch (ConfigException e) {
        return e;
      }
    });
    Throwable refused = load.get(5, TimeUnit.SECONDS); // a hang fails here
    assertThat(refused).isInstanceOf(ConfigException.class)
        .hasMessage(fifo + ": not a regular file (a FIFO); the configuration must be a file");
  }

  @Test
  void devZeroAndAHugeFileAreRefusedWithoutReadingThem() throws Exception {
    assertThatThrownBy(() -> loader.load(Path.of("/dev/zero"))).isInstanceOf(ConfigException.class)
        .hasMessage("/dev/zero: not a regular file (a character device); the configuration must be a file");
    Path huge = dir.resolve("huge.yaml");
    try (var out = Files.newOutputStream(huge)) {
      byte[] comment = ("# " + "x".repeat(1021) + "\n").getBytes(java.nio.charset.StandardCharsets.US_ASCII);
      for (int i = 0; i < 60 * 1024; i++) { // 60 MB of comments, as the suite's file
        out.write(comment);
      }
    }
    assertThatThrownBy(() -> loader.load(huge)).isInstanceOf(ConfigException.class)
        .hasMessage(huge + ": larger than 1024 KiB; a configuration is a few KB");
    Files.delete(huge);
  }

  @Test
  void asRootAWorldWritableBpftraceOrItsDirectoryIsRefused() throws Exception {
    KernelTests.requireRoot();
    ConfigLoader asRoot = new ConfigLoader(new FileTrust(true));
    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
    Path bin = Files.createDirectory(dir.resolve("bin"));
    Files.setPosixFilePermissions(bin, PosixFilePermissions.fromString("rwxr-xr-x"));
    Path bpftrace = Files.writeString(bin.resolve("bpftrace"), "#!/bin/sh\n");
    Files.setPosixFilePermissions(bpftrace, PosixFilePermissions.fromString("rwxrwxrwx"));
    Path config = Files.writeString(dir.resolve("config.yaml"), "bpftrace: " + bpftrace + "\n");
    Files.setPosixFilePermissions(config, PosixFilePermissions.fromString("rw-r--r--"));
    assertThatThrownBy(() -> asRoot.load(config)).isInstanceOf(ConfigException.class)
        .hasMessage(config + ": key 'bpftrace': bpftrace executable " + bpftrace
            + " is writable by group or others; running as root, the agent refuses it (chmod go-w " + bpftrace + ")");

    Files.setPosixFilePermissions(bpftrace, PosixFilePermissions.fromString("rwxr-xr-x"));
    Files.setPosixFilePermissions(bin, PosixFilePermissions.fromString("rwxrwxrwx"));
    assertThatThrownBy(() -> asRoot.load(config)).isInstanceOf(ConfigException.class)
        .hasMessageContaining("the directory of bpftrace executable " + bpftrace + " " + bin + " is writable by group or others");

    // A trusted link to a writable file is refused too: the file it leads to is what runs.
    Files.setPosixFilePermissions(bin, PosixFilePermissions.fromString("rwxr-xr-x"));
    Path open = Files.createDirectory(dir.resolve("open"));
    Files.setPosixFilePermissions(open, PosixFilePermissions.fromString("rwxrwxrwx"));
    Path real = Files.writeString(open.resolve("bpftrace-real"), "#!/bin/sh\n");
    Files.setPosixFilePermissions(real, PosixFilePermissions.fromString("rwxr-xr-x"));
    Files.delete(bpftrace);
    Files.createSymbolicLink(bpftrace, real);
    assertThatThrownBy(() -> asRoot.load(config)).isInstanceOf(ConfigException.class)
        .hasMessageContaining(open + " is writable by group or others");

    Files.setPosixFilePermissions(open, PosixFilePermissions.fromString("rwxr-xr-x"));
    assertThat(asRoot.load(config).bpftrace()).isEqualTo(bpftrace);
    assertThat(List.of(loader.load(config).bpftrace())).containsExactly(bpftrace);
  }
}
