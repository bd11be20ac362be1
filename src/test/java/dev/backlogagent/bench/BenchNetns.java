package dev.backlogagent.bench;

import dev.backlogagent.testing.TestNetns;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.UUID;

/**
 * A benchmark's own network namespace, named {@code bltest-bench-<what>-<random>}, with only {@code lo} (up)
 * and no route out; closing it kills whatever still runs inside and deletes it.
 */
final class BenchNetns implements AutoCloseable {
  private final String name;

  private BenchNetns(String name) {
    this.name = name;
  }

  static BenchNetns create(String what) throws IOException, InterruptedException {
    BenchNetns ns = new BenchNetns("bltest-bench-" + what + "-" + UUID.randomUUID().toString().substring(0, 6));
    TestNetns.run("ip", "netns", "add", ns.name);
    try {
      TestNetns.run("ip", "netns", "exec", ns.name, "ip", "link", "set", "lo", "up");
    } catch (IOException | RuntimeException e) {
      ns.close();
      throw e;
    }
    return ns;
  }

  String name() {
    return name;
  }

  /** The namespace's inode: what {@code --netns} takes and what the BPF programs report. */
  long inode() throws IOException {
    return ((Number) Files.getAttribute(Path.of("/run/netns", name), "unix:ino")).longValue();
  }

  @Override
  public void close() throws IOException, InterruptedException {
    try {
      for (String pid : TestNetns.run("ip", "netns", "pids", name).split("\\s+")) {
        if (!pid.isBlank()) {
          ProcessHandle.of(Long.parseLong(pid)).ifPresent(ProcessHandle::destroyForcibly);
        }
      }
    } catch (IOException e) {
      // already gone
    }
    try {
      TestNetns.run("ip", "netns", "del", name);
    } catch (IOException e) {
      // already gone
    }
  }
}
