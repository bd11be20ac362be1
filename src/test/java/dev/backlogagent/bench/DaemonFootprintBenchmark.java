package dev.backlogagent.bench;

import dev.backlogagent.testing.DaemonProcess;
import dev.backlogagent.testing.KernelTests;
import dev.backlogagent.testing.TestNetns;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The daemon's steady footprint, run through the shipped launcher with the default configuration: the
 * RSS of its JVM and, separately, of its bpftrace children, and the CPU they use per minute — on an idle
 * host, then under a loopback connection storm. Baseline measured in the same run: a JVM with the
 * launcher's flags that does nothing (what the agent adds to a bare JVM), and the storm's rate without
 * the agent. Target: JVM RSS under 100 MB.
 *
 * <p>{@code mvn -q package -DskipTests && mvn -B verify -Pbench -Dtest=DaemonFootprintBenchmark
 * -Dsurefire.failIfNoSpecifiedTests=false}; {@code -Dbench.phaseSeconds=60} sets each phase's length.
 */
@Tag("bench")
class DaemonFootprintBenchmark {
  private static final int PHASE_S = Integer.getInteger("bench.phaseSeconds", 60);
  private static final Path WORK = Path.of("target", "bench-daemon");
  private static final long TICKS_PER_SECOND = 100; // USER_HZ on Linux
  private static final int STORM_PORT = 9100;

  /** Samples one process tree once a second: the root's RSS, its descendants' RSS, and CPU ticks. */
  record Phase(String name, long maxJvmKb, long lastJvmKb, long maxChildrenKb, double jvmCpuPerMinute,
      double childrenCpuPerMinute, long connections) {}

  @Test
  void footprintIdleAndUnderAStorm() throws Exception {
    KernelTests.assumeKernel("daemon footprint benchmark");
    KernelTests.requireCommand("gcc");
    Path launcher = Path.of("agent", "backlog-agent").toAbsolutePath();
    Path jar = Path.of("target", "backlog-agent.jar");
    KernelTests.require(Files.isReadable(jar), "target/backlog-agent.jar (run mvn -q package -DskipTests first)");
    Files.createDirectories(WORK);
    Path storm = WORK.resolve("storm").toAbsolutePath();
    TestNetns.run("gcc", "-O2", "-Wall", "-o", storm.toString(), Path.of("bpf", "test", "storm.c").toString());

    long baselineKb = idleJvmRss();
    double baselineRate = stormAlone(storm);

    int prometheus = DaemonProcess.freePort();
    Path config = DaemonProcess.config(Files.createDirectories(WORK.resolve("etc")), """
        state_file: %s
        exporters: {prometheus: {port: %d}}
        """.formatted(WORK.resolve("state.json").toAbsolutePath(), prometheus));
    Process daemon = new ProcessBuilder(launcher.toString(), "run", "--config", config.toString())
        .redirectErrorStream(true).start();
    List<Phase> phases = new ArrayList<>();
    double stormRate;
    try (BufferedReader out = new BufferedReader(new InputStreamReader(daemon.getInputStream(), StandardCharsets.UTF_8))) {
      String first = out.readLine();
      if (first == null || !first.startsWith("tier ")) {
        throw new AssertionError("the daemon did not start: " + first);
      }
      Thread drain = new Thread(() -> {
        try {
          while (out.readLine() != null) {
            // keep the pipe empty
          }
        } catch (IOException e) {
          // ended
        }
      });
      drain.setDaemon(true);
      drain.start();
      Thread.sleep(20_000); // warm-up: class loading, the first intervals and scrapes
      phases.add(sample("idle", daemon.pid(), prometheus, PHASE_S, null));
      try (BenchNetns ns = BenchNetns.create("footprint")) {
        long[] connections = new long[1];
        Thread stormThread = new Thread(() -> {
          try {
            connections[0] = runStorm(ns, storm, PHASE_S);
          } catch (Exception e) {
            throw new IllegalStateException(e);
          }
        });
        stormThread.start();
        phases.add(sample("storm", daemon.pid(), prometheus, PHASE_S, stormThread));
        stormThread.join();
        Phase p = phases.remove(1);
        phases.add(new Phase(p.name(), p.maxJvmKb(), p.lastJvmKb(), p.maxChildrenKb(), p.jvmCpuPerMinute(),
            p.childrenCpuPerMinute(), connections[0]));
        stormRate = connections[0] / (double) PHASE_S;
      }
      phases.add(sample("idle again", daemon.pid(), prometheus, Math.max(10, PHASE_S / 2), null));
    } finally {
      daemon.destroy();
      daemon.waitFor(10, TimeUnit.SECONDS);
      daemon.destroyForcibly();
    }

    System.out.printf(Locale.ROOT, "%nDaemon footprint (launcher, default config; %d s phases)%n", PHASE_S);
    System.out.printf(Locale.ROOT, "baseline: idle JVM with the launcher's flags %.1f MB RSS; storm alone %.0f connections/s%n",
        baselineKb / 1024.0, baselineRate);
    System.out.printf(Locale.ROOT, "%-11s %12s %12s %10s %14s %16s %12s%n", "phase", "JVM RSS max", "x baseline",
        "children", "JVM CPU s/min", "children s/min", "conn/s");
    for (Phase p : phases) {
      System.out.printf(Locale.ROOT, "%-11s %9.1f MB %11.2fx %7.1f MB %14.2f %16.2f %12.0f%n", p.name(), p.maxJvmKb() / 1024.0,
          p.maxJvmKb() / (double) baselineKb, p.maxChildrenKb() / 1024.0, p.jvmCpuPerMinute(), p.childrenCpuPerMinute(),
          p.connections() / (double) PHASE_S);
    }
    System.out.printf(Locale.ROOT, "storm rate with the daemon: %.2fx the rate without it%n", stormRate / baselineRate);
    long worst = phases.stream().mapToLong(Phase::maxJvmKb).max().orElse(0);
    System.out.printf(Locale.ROOT, "target: JVM RSS under 100 MB: %s (%.1f MB)%n%n", worst < 100 * 1024 ? "met" : "MISSED", worst / 1024.0);
  }

  /**
   * 10,000 listeners on the host (one process in a namespace of the benchmark's own) and the default
   * configuration (500 exported): the daemon's RSS over a phase with a scrape every 15 s. Target: under
   * 100 MB. {@code -Dtest=DaemonFootprintBenchmark#tenThousandListeners}
   */
  @Test
  void tenThousandListeners() throws Exception {
    KernelTests.assumeKernel("daemon footprint with 10,000 listeners");
    KernelTests.requireCommand("python3");
    Path launcher = Path.of("agent", "backlog-agent").toAbsolutePath();
    KernelTests.require(Files.isReadable(Path.of("target", "backlog-agent.jar")), "target/backlog-agent.jar");
    Files.createDirectories(WORK);
    Path many = WORK.resolve("many.py").toAbsolutePath();
    Files.writeString(many, String.join("\n",
        "import resource, socket, sys, time",
        "n = int(sys.argv[1])",
        "resource.setrlimit(resource.RLIMIT_NOFILE, (n + 100, n + 100))",
        "socks = []",
        "for i in range(n):",
        "    s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(16); socks.append(s)",
        "print('listening', n, flush=True)",
        "time.sleep(float(sys.argv[2]))", ""));
    int prometheus = DaemonProcess.freePort();
    Path config = DaemonProcess.config(Files.createDirectories(WORK.resolve("etc-many")), """
        state_file: %s
        exporters: {prometheus: {port: %d}}
        """.formatted(WORK.resolve("state-many.json").toAbsolutePath(), prometheus));
    try (BenchNetns ns = BenchNetns.create("many")) {
      Process listeners = new ProcessBuilder("ip", "netns", "exec", ns.name(), "python3", many.toString(), "10000",
          Integer.toString(PHASE_S + 120)).redirectErrorStream(true).start();
      String ready = new BufferedReader(new InputStreamReader(listeners.getInputStream(), StandardCharsets.UTF_8)).readLine();
      KernelTests.require(ready != null && ready.startsWith("listening"), "10,000 listeners (" + ready + ")");
      Process daemon = new ProcessBuilder(launcher.toString(), "run", "--config", config.toString())
          .redirectErrorStream(true).redirectOutput(WORK.resolve("many-daemon.log").toFile()).start();
      try {
        Thread.sleep(20_000); // warm-up: class loading, the first intervals and scrapes
        Phase p = sample("10k lsnrs", daemon.pid(), prometheus, PHASE_S, null);
        String summary = Files.readAllLines(WORK.resolve("many-daemon.log")).stream()
            .filter(l -> l.contains(" listeners in ")).reduce((a, b) -> b).orElse("(no summary line)");
        System.out.printf(Locale.ROOT, "%n10,000 listeners on the host, default config (%d s): JVM RSS max %.1f MB, last %.1f MB, "
            + "CPU %.2f s/min%nlast summary: %s%n", PHASE_S, p.maxJvmKb() / 1024.0, p.lastJvmKb() / 1024.0,
            p.jvmCpuPerMinute(), summary);
        System.out.printf(Locale.ROOT, "target: JVM RSS under 100 MB: %s%n%n", p.maxJvmKb() < 100 * 1024 ? "met" : "MISSED");
      } finally {
        daemon.destroy();
        daemon.waitFor(10, TimeUnit.SECONDS);
        daemon.destroyForcibly();
        listeners.destroyForcibly();
        listeners.waitFor(5, TimeUnit.SECONDS);
      }
    }
  }

  private static Phase sample(String name, long pid, int prometheus, int seconds, Thread until) throws Exception {
    long jvmTicks0 = TracerCost.ticks(pid);
    long childTicks0 = childTicks(pid);
    long maxJvm = 0;
    long last = 0;
    long maxChildren = 0;
    long start = System.nanoTime();
    for (int i = 0; i < seconds; i++) {
      Thread.sleep(1000);
      if (i % 15 == 0) {
        DaemonProcess.scrape(prometheus); // a Prometheus server's scrape every 15 s, as deployed
      }
      last = DaemonProcess.rssKb(pid);
      maxJvm = Math.max(maxJvm, last);
      long children = 0;
      for (ProcessHandle child : ProcessHandle.of(pid).orElseThrow().descendants().toList()) {
        children += DaemonProcess.rssKb(child.pid());
      }
      maxChildren = Math.max(maxChildren, children);
    }
    double minutes = (System.nanoTime() - start) / 60e9;
    double jvmCpu = (TracerCost.ticks(pid) - jvmTicks0) / (double) TICKS_PER_SECOND / minutes;
    double childCpu = (childTicks(pid) - childTicks0) / (double) TICKS_PER_SECOND / minutes;
    return new Phase(name, maxJvm, last, maxChildren, jvmCpu, childCpu, 0);
  }

  private static long childTicks(long pid) {
    long sum = 0;
    for (ProcessHandle child : ProcessHandle.of(pid).orElseThrow().descendants().toList()) {
      sum += TracerCost.ticks(child.pid());
    }
    return sum;
  }

  private static long idleJvmRss() throws Exception {
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    Process p = new ProcessBuilder(java, "-XX:+UseSerialGC", "-Xms16m", "-Xmx96m", "-XX:MaxMetaspaceSize=64m", "-Xss512k",
        "-XX:TieredStopAtLevel=1", "-XX:CICompilerCount=1", "-XX:ReservedCodeCacheSize=32m", "-XX:-UsePerfData",
        "-cp", System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")), IdleJvm.class.getName())
        .redirectErrorStream(true).start();
    try {
      new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8)).readLine();
      Thread.sleep(3000);
      return DaemonProcess.rssKb(p.pid());
    } finally {
      p.destroyForcibly();
      p.waitFor(5, TimeUnit.SECONDS);
    }
  }

  private static double stormAlone(Path storm) throws Exception {
    try (BenchNetns ns = BenchNetns.create("footprint-base")) {
      int seconds = Math.max(5, PHASE_S / 6);
      return runStorm(ns, storm, seconds) / (double) seconds;
    }
  }

  /** Runs the storm's server and client in the namespace for {@code seconds}; returns the connections made. */
  private static long runStorm(BenchNetns ns, Path storm, int seconds) throws Exception {
    Process server = new ProcessBuilder("ip", "netns", "exec", ns.name(), storm.toString(), "server",
        Integer.toString(STORM_PORT), Integer.toString(seconds + 2)).redirectErrorStream(true).start();
    try (BufferedReader serverOut = new BufferedReader(new InputStreamReader(server.getInputStream(), StandardCharsets.UTF_8))) {
      String ready = serverOut.readLine();
      if (ready == null || !ready.startsWith("listening")) {
        throw new IOException("the storm server did not listen: " + ready);
      }
      Process client = new ProcessBuilder("ip", "netns", "exec", ns.name(), storm.toString(), "client", "127.0.0.1",
          Integer.toString(STORM_PORT), Integer.toString(seconds)).redirectErrorStream(true).start();
      String result = new String(client.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      client.waitFor(seconds + 30L, TimeUnit.SECONDS);
      for (String line : result.split("\n")) {
        if (line.startsWith("connections ")) {
          return Long.parseLong(line.split("\\s+")[1]);
        }
      }
      throw new IOException("no result from the storm client: " + result);
    } finally {
      server.destroyForcibly();
      server.waitFor(5, TimeUnit.SECONDS);
    }
  }
}
