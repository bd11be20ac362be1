package dev.backlogagent.bench;

import static org.assertj.core.api.Assertions.assertThat;

import dev.backlogagent.bench.TracerCost.ProgramStat;
import dev.backlogagent.testing.DaemonProcess;
import dev.backlogagent.testing.KernelTests;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Predicate;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * What tracing costs under a loopback connection storm: the agent (the real jar, as a subprocess: the daemon,
 * {@code backlog-agent run} with the default configuration, and {@code backlog-agent trace}) against no tracer and against the cheapest useful tracer, a bpftrace that only counts state
 * changes in a kernel map ({@code src/test/resources/bench/states-keyed.bt}, what bpf/states.bt was). The storm ({@code bpf/test/storm.c}: connect/close with
 * SO_LINGER 0 against accept/close) runs in a namespace of its own; configurations alternate, round after
 * round, because this machine's storm rate varies 10-20 % between runs.
 *
 * <p>A tracer's cost over the storm window, per 100,000 connections: the run time of its BPF programs in the
 * kernel ({@code run_time_ns} deltas, {@code kernel.bpf_stats_enabled=1}, restored afterwards) plus the CPU
 * (utime + stime) of its whole process tree (the agent's JVM and its bpftrace children), sampled after the
 * tracer is ready and has settled, so that JVM start-up and bpftrace's compile are not counted.
 *
 * <p>The agent ships and runs (systemd too) through its launcher, {@code agent/backlog-agent}: the figures of
 * {@code run} and {@code trace} through it are the agent's cost, printed last against the target;
 * {@code -Dbench.javaJar=true} adds {@code java -jar} with the JVM's default flags, and
 * {@code -Dbench.basePrograms=DIR} both again with other programs, to price a change to bpf/ in the same run. Prints figures; asserts only that it measured something. Needs {@code target/backlog-agent.jar}
 * ({@code mvn -q -o package -DskipTests}). Run: {@code mvn -B verify -Pbench -Dtest=TraceOverheadBenchmark
 * -Dsurefire.failIfNoSpecifiedTests=false}; {@code -Dbench.rounds=N} (default 8) and
 * {@code -Dbench.stormSeconds=S} (default 4) change the shape; {@code -Dbench.warmupSeconds=S} measures each tracer
 * after an unmeasured storm (warm, as a long-running agent is) instead of during the first storm it sees.
 */
@Tag("bench")
class TraceOverheadBenchmark {
  private static final int ROUNDS = Integer.getInteger("bench.rounds", 8);
  private static final double STORM_S = Double.parseDouble(System.getProperty("bench.stormSeconds", "4"));
  private static final int PORT = 9000;
  private static final String INTERVAL_S = "1";
  private static final Duration READY_TIMEOUT = Duration.ofSeconds(60);
  /** After a tracer is ready: the agent's first interval passes before the window opens. */
  private static final long SETTLE_MS = 2000;
  private static final double TARGET_S_PER_100K = 0.25;
  private static final Path JAR = Path.of("target", "backlog-agent.jar");
  private static final Path WORK = Path.of("target", "bench-trace");

  /** -Dbench.agentPrograms=DIR: the agent runs the programs of DIR (--programs), to price a change before making it. */
  private static final String AGENT_PROGRAMS = System.getProperty("bench.agentPrograms", "");
  /**
   * -Dbench.warmupSeconds=S: before each measured storm, an unmeasured one of S seconds (every configuration, the
   * untraced one too), so that a tracer is measured warm, as a long-running agent is, not while its JVM is still
   * compiling the paths the first storm makes hot. 0 (the default) measures the first storm a tracer sees.
   */
  private static final double WARMUP_S = Double.parseDouble(System.getProperty("bench.warmupSeconds", "0"));
  /**
   * -Dbench.agentStates=true: the agent also runs states.bt ({@code trace --states}), as the daemon does by default
   * ({@code states: true}); without it the agent runs what {@code trace} runs by default.
   */
  private static final boolean AGENT_STATES = Boolean.parseBoolean(System.getProperty("bench.agentStates", "false"));
  /** -Dbench.launcher=false leaves out the launcher configurations, trace and run (shorter runs). */
  private static final boolean LAUNCHER = Boolean.parseBoolean(System.getProperty("bench.launcher", "true"));
  /** -Dbench.javaJar=true adds {@code java -jar … trace} with the JVM's default flags, for comparison. */
  private static final boolean JAVA_JAR = Boolean.parseBoolean(System.getProperty("bench.javaJar", "false"));
  /**
   * -Dbench.basePrograms=DIR: trace and run are measured a second time in each round with DIR's programs
   * ({@code trace --programs DIR}, {@code programs: DIR}), labelled {@code @base}: a change to bpf/ priced against
   * what it replaces in the same run, on the same noisy machine.
   */
  private static final String BASE_PROGRAMS = System.getProperty("bench.basePrograms", "");
  /**
   * -Dbench.statesProgram=FILE: the baseline's program, by default src/test/resources/bench/states-keyed.bt (state
   * changes counted in a map keyed by old and new state: bpf/states.bt before it moved to keyless counts).
   */
  private static final String STATES_PROGRAM = System.getProperty("bench.statesProgram",
      Path.of("src", "test", "resources", "bench", "states-keyed.bt").toString());
  /**
   * -Dbench.bpftrace=PATH: every tracer runs this bpftrace ({@code --bpftrace PATH}, {@code bpftrace: PATH}, and the
   * baseline's states.bt), e.g. another version's, to price the programs under it on the same kernel and machine.
   */
  private static final String BPFTRACE = System.getProperty("bench.bpftrace", "bpftrace");
  /** -Dbench.ftrace=false leaves out the ftrace tier. */
  private static final boolean FTRACE = Boolean.parseBoolean(System.getProperty("bench.ftrace", "true"));

  /**
   * What traces during a storm. {@code trace} is {@code agent/backlog-agent trace} (the shipped launcher, with the JVM
   * flags a deployed agent runs with: serial GC, C1 only, one compiler thread) and its default programs; {@code run}
   * is the daemon as systemd starts it, {@code agent/backlog-agent run} with the default configuration (10 s interval,
   * every concern, states included, Prometheus endpoint on a free port; only the state file's path and that port
   * differ). {@code java -jar} is {@code trace} with the JVM's default flags, for comparison. The {@code @base}
   * configurations are trace and run again with -Dbench.basePrograms's programs.
   */
  enum Config {
    NONE("none", false, false, false), STATES("states-keyed", false, false, false), AGENT("java -jar", true, false, false),
    LAUNCHER("trace", true, false, false), DAEMON("run", true, true, false),
    BASE_TRACE("trace@base", true, false, true), BASE_RUN("run@base", true, true, true),
    /** trace with {@code --tier ftrace}: no BPF; its kernel side (event filters, ring buffer) is charged to the storm. */
    FTRACE("ftrace", true, false, false);

    final String label;
    final boolean agent;
    final boolean daemon;
    final boolean base;

    Config(String label, boolean agent, boolean daemon, boolean base) {
      this.label = label;
      this.agent = agent;
      this.daemon = daemon;
      this.base = base;
    }

    boolean measured() {
      return switch (this) {
        case NONE, STATES -> true;
        case AGENT -> JAVA_JAR;
        case LAUNCHER, DAEMON -> TraceOverheadBenchmark.LAUNCHER;
        case BASE_TRACE, BASE_RUN -> TraceOverheadBenchmark.LAUNCHER && !BASE_PROGRAMS.isBlank();
        case FTRACE -> TraceOverheadBenchmark.FTRACE;
      };
    }
  }

  /** One storm, and what the tracer (if any) cost during it. Per program: label -> {run_cnt, run_time_ns}. */
  record Run(Config config, int round, long connections, long failed, double rate, long bpfNs, long bpfRuns,
      long programs, double treeCpuS, Map<String, Double> treeByProcess, long linesPrinted,
      Map<String, long[]> perProgram, List<String> notes, double stormCpuS) {
    /** The storm client's own CPU (user + system, its kernel work included) per 100k connections. */
    double stormPer100k() {
      return stormCpuS / connections * 1e5;
    }

    double bpfPer100k() {
      return bpfNs / 1e9 / connections * 1e5;
    }

    double treePer100k() {
      return treeCpuS / connections * 1e5;
    }
  }

  @Test
  void traceOverheadUnderAConnectionStorm() throws Exception {
    KernelTests.assumeKernel("the trace overhead benchmark");
    for (String command : List.of("gcc", "bpftool", "setpriv")) {
      KernelTests.require(KernelTests.findCommand(command).isPresent(), "the trace overhead benchmark needs " + command);
    }
    assertThat(JAR).as("the agent's jar; build it first: mvn -q -o package -DskipTests").exists();
    warnIfStale();
    Files.createDirectories(WORK);
    Path storm = compileStorm();
    long clkTck = Long.parseLong(run("getconf", "CLK_TCK").strip());

    List<Config> configs = Stream.of(Config.values()).filter(Config::measured).toList();
    List<Run> runs = new ArrayList<>();
    String oldStats = TracerCost.statsEnabled();
    try (BenchNetns ns = BenchNetns.create("storm")) {
      TracerCost.setStatsEnabled("1");
      System.out.printf("%nTrace overhead: %s s storms%s in %s (inode %d), %d rounds, kernel %s, %d CPUs, load average %s%s%n",
          STORM_S, WARMUP_S > 0 ? " (each after an unmeasured " + WARMUP_S + " s one)" : "", ns.name(), ns.inode(), ROUNDS, Files.readString(Path.of("/proc/sys/kernel/osrelease")).strip(),
          Runtime.getRuntime().availableProcessors(), loadAverage(),
          (AGENT_PROGRAMS.isBlank() ? "" : ", agent --programs " + AGENT_PROGRAMS) + (AGENT_STATES ? ", trace --states" : "")
              + (BASE_PROGRAMS.isBlank() ? "" : ", @base: programs " + BASE_PROGRAMS));
      System.out.printf("%-5s %-10s %12s %9s %11s %12s %13s %13s  %s%n",
          "round", "tracer", "connections", "conn/s", "BPF s/100k", "tree s/100k", "total s/100k", "storm s/100k", "notes");
      for (int round = 1; round <= ROUNDS; round++) {
        for (int k = 0; k < configs.size(); k++) {
          // Rotate the order each round, so no tracer always runs first (or right after another's start-up).
          Config config = configs.get((round - 1 + k) % configs.size());
          Run r = measure(config, round, ns, storm, clkTck);
          runs.add(r);
          System.out.printf("%-5d %-10s %12d %9.0f %11s %12s %13s %13.3f  %s%n", round, config.label, r.connections(), r.rate(),
              config == Config.NONE ? "-" : String.format("%.3f", r.bpfPer100k()),
              config == Config.NONE ? "-" : String.format("%.3f", r.treePer100k()),
              config == Config.NONE ? "-" : String.format("%.3f", r.bpfPer100k() + r.treePer100k()),
              r.stormPer100k(), String.join("; ", r.notes()));
        }
      }
    } finally {
      TracerCost.setStatsEnabled(oldStats);
    }
    // Other work on this machine shows up in the storm's rate: the load average says how much there was.
    System.out.printf("%nLoad average at the end: %s%n", loadAverage());
    printSummary(configs, runs);

    for (Run r : runs) {
      assertThat(r.connections()).as("connections in %s round %d", r.config(), r.round()).isPositive();
      if (r.config() == Config.FTRACE) {
        assertThat(r.programs()).as("BPF programs of the ftrace tier, round %d", r.round()).isZero();
        assertThat(r.treeCpuS()).as("the ftrace tier's JVM read its events in round %d", r.round()).isPositive();
      } else if (r.config() != Config.NONE) {
        assertThat(r.programs()).as("BPF programs of %s round %d", r.config(), r.round()).isPositive();
        assertThat(r.bpfRuns()).as("BPF program runs of %s round %d", r.config(), r.round()).isPositive();
      }
    }
  }

  private Run measure(Config config, int round, BenchNetns ns, Path storm, long clkTck) throws Exception {
    Tracer tracer = null;
    try {
      if (config.daemon) {
        tracer = Tracer.daemon(config.base ? BASE_PROGRAMS : AGENT_PROGRAMS, config.label);
      } else if (config.agent) {
        tracer = Tracer.agent(ns.inode(), config != Config.AGENT, config == Config.FTRACE,
            config.base ? BASE_PROGRAMS : AGENT_PROGRAMS);
      } else if (config == Config.STATES) {
        tracer = Tracer.states();
      }
      if (tracer != null) {
        Thread.sleep(SETTLE_MS);
      }
      if (WARMUP_S > 0) {
        try (Storm warmup = Storm.start(ns, storm, WARMUP_S)) {
          warmup.awaitClient();
        }
        Thread.sleep(SETTLE_MS / 2);
      }
      Set<Integer> ids = tracer == null ? Set.of() : tracer.programIds();
      Map<Integer, ProgramStat> bpfBefore = ids.isEmpty() ? Map.of() : TracerCost.programStats(ids);
      Map<Long, Long> treeBefore = tracer == null ? Map.of() : TracerCost.treeTicks(tracer.root());
      long jitBefore = tracer == null ? 0 : TracerCost.jitTicks(tracer.root());
      long linesBefore = tracer == null ? 0 : tracer.stdoutLines();

      Storm.Result result;
      Map<Long, Long> treeAfter;
      long jitAfter;
      Set<Integer> idsAfter;
      Map<Integer, ProgramStat> bpfAfter;
      long linesAfter;
      try (Storm s = Storm.start(ns, storm, STORM_S)) {
        s.awaitClient();
        // Close the window as soon as the client is done (the server idles on for a second).
        treeAfter = tracer == null ? Map.of() : TracerCost.treeTicks(tracer.root());
        jitAfter = tracer == null ? 0 : TracerCost.jitTicks(tracer.root());
        linesAfter = tracer == null ? 0 : tracer.stdoutLines();
        idsAfter = tracer == null ? Set.of() : tracer.programIds();
        Set<Integer> all = new TreeSet<>(ids);
        all.addAll(idsAfter);
        bpfAfter = all.isEmpty() ? Map.of() : TracerCost.programStats(all);
        result = s.result();
      }

      List<String> notes = new ArrayList<>();
      if (!idsAfter.equals(ids)) {
        notes.add("BPF programs changed during the storm (" + ids.size() + " -> " + idsAfter.size() + ")");
      }
      long bpfNs = 0;
      long bpfRuns = 0;
      Map<String, long[]> perProgram = new LinkedHashMap<>();
      Map<Integer, String> labels = tracer == null ? Map.of() : tracer.labels(bpfAfter);
      for (ProgramStat after : bpfAfter.values()) {
        ProgramStat before = bpfBefore.get(after.id());
        long runs = after.runCount() - (before == null ? 0 : before.runCount());
        long nanos = after.runTimeNs() - (before == null ? 0 : before.runTimeNs());
        bpfRuns += runs;
        bpfNs += nanos;
        long[] sum = perProgram.computeIfAbsent(labels.getOrDefault(after.id(), "? " + after.name()), l -> new long[2]);
        sum[0] += runs;
        sum[1] += nanos;
      }
      long ticks = 0;
      Map<String, Double> byProcess = new LinkedHashMap<>();
      for (Map.Entry<Long, Long> e : treeAfter.entrySet()) {
        long delta = e.getValue() - treeBefore.getOrDefault(e.getKey(), 0L);
        ticks += delta;
        if (e.getKey() == tracer.root() && tracer.isAgent()) {
          // A JVM just started compiles its hot paths during the first storm: shown apart.
          long jit = Math.max(0, Math.min(delta, jitAfter - jitBefore));
          byProcess.merge("JVM JIT threads", (double) jit / clkTck, Double::sum);
          byProcess.merge("JVM other threads", (double) (delta - jit) / clkTck, Double::sum);
        } else {
          byProcess.merge(TracerCost.comm(e.getKey()), (double) delta / clkTck, Double::sum);
        }
      }
      Set<Long> gone = new HashSet<>(treeBefore.keySet());
      gone.removeAll(treeAfter.keySet());
      if (!gone.isEmpty()) {
        notes.add("processes ended during the storm (their CPU is missing): " + gone);
      }
      if (result.failed() > 0) {
        notes.add(result.failed() + " connects failed");
      }
      if (tracer != null && tracer.isAgent()) {
        notes.add((linesAfter - linesBefore) + " lines printed");
      }
      return new Run(config, round, result.connections(), result.failed(), result.rate(), bpfNs, bpfRuns,
          bpfAfter.size(), (double) ticks / clkTck, byProcess, linesAfter - linesBefore, perProgram, notes, result.cpuS());
    } finally {
      if (tracer != null) {
        tracer.close();
      }
    }
  }

  private static void printSummary(List<Config> configs, List<Run> runs) {
    Map<Config, List<Run>> by = new LinkedHashMap<>();
    for (Config c : configs) {
      by.put(c, runs.stream().filter(r -> r.config() == c).toList());
    }
    double noneRate = meanRate(by.get(Config.NONE));
    double statesTotal = per100k(by.get(Config.STATES), true) + per100k(by.get(Config.STATES), false);
    System.out.printf("%nMeans over the rounds (costs pooled: all runs' seconds over all runs' connections)%n");
    double noneStorm = stormPer100k(by.get(Config.NONE));
    System.out.printf("%-10s %4s %9s %13s %11s %12s %13s %15s %13s %15s%n",
        "tracer", "runs", "conn/s", "rate vs none", "BPF s/100k", "tree s/100k", "total s/100k", "vs keyed",
        "storm s/100k", "storm vs none");
    for (Map.Entry<Config, List<Run>> e : by.entrySet()) {
      List<Run> rs = e.getValue();
      double rate = meanRate(rs);
      if (e.getKey() == Config.NONE) {
        System.out.printf("%-10s %4d %9.0f %13s %11s %12s %13s %15s %13.3f %15s%n", e.getKey().label, rs.size(), rate, "1.00",
            "-", "-", "-", "-", noneStorm, "-");
        continue;
      }
      double bpf = per100k(rs, true);
      double tree = per100k(rs, false);
      double storm = stormPer100k(rs);
      System.out.printf("%-10s %4d %9.0f %13.2f %11.3f %12.3f %13.3f %15s %13.3f %+15.3f%n", e.getKey().label, rs.size(), rate,
          rate / noneRate, bpf, tree, bpf + tree, String.format("%.1fx", (bpf + tree) / statesTotal), storm, storm - noneStorm);
    }
    System.out.println();
    for (Config c : configs) {
      if (c == Config.NONE) {
        continue;
      }
      List<Run> rs = by.get(c);
      double total = per100k(rs, true) + per100k(rs, false);
      // Paired per round: the tracer's rate against the untraced storm of the same round.
      StringBuilder paired = new StringBuilder();
      double ratios = 0;
      int pairs = 0;
      for (Run a : rs) {
        for (Run n : by.get(Config.NONE)) {
          if (n.round() == a.round()) {
            paired.append(String.format(" %.2f", a.rate() / n.rate()));
            ratios += a.rate() / n.rate();
            pairs++;
          }
        }
      }
      paired.append(pairs == 0 ? "" : String.format(" (mean %.2f)", ratios / pairs));
      System.out.printf("%-10s %.3f s per 100k connections%s; rate / untraced rate of the same round:%s%n", c.label, total,
          c == Config.STATES ? "" : String.format(" (target <= %.2f s: %s)", TARGET_S_PER_100K,
              total <= TARGET_S_PER_100K ? "within" : "OVER"), paired);
      Map<String, Double> byProcess = new LinkedHashMap<>();
      rs.forEach(r -> r.treeByProcess().forEach((k, v) -> byProcess.merge(k, v, Double::sum)));
      long conns = rs.stream().mapToLong(Run::connections).sum();
      System.out.printf("%-10s process tree CPU per 100k connections:%s%s%n", "", byProcess.entrySet().stream()
          .map(e -> String.format(" %s %.3f s", e.getKey(), e.getValue() / conns * 1e5)).reduce("", String::concat),
          c == Config.STATES ? "" : String.format("; %d lines printed", rs.stream().mapToLong(Run::linesPrinted).sum()));
    }

    // The agent as shipped runs through the launcher: trace and run are its figures, against the target.
    System.out.println();
    for (Config shipped : List.of(Config.LAUNCHER, Config.DAEMON, Config.BASE_TRACE, Config.BASE_RUN)) {
      List<Run> shippedRuns = by.get(shipped);
      if (shippedRuns == null || shippedRuns.isEmpty()) {
        continue;
      }
      double shippedBpf = per100k(shippedRuns, true);
      double shippedTree = per100k(shippedRuns, false);
      double shippedTotal = shippedBpf + shippedTree;
      System.out.printf("The agent's cost (%s, agent/backlog-agent as shipped): %.3f s per 100k connections = BPF %.3f + process tree %.3f; "
              + "target <= %.2f s: %s by %.3f s (%.0f %%); %.2f x states-keyed; storm rate %.2f of untraced; spread over rounds %s%n",
          shipped.label, shippedTotal, shippedBpf, shippedTree, TARGET_S_PER_100K,
          shippedTotal <= TARGET_S_PER_100K ? "within" : "OVER",
          Math.abs(TARGET_S_PER_100K - shippedTotal), 100 * Math.abs(TARGET_S_PER_100K - shippedTotal) / TARGET_S_PER_100K,
          shippedTotal / statesTotal, meanRate(shippedRuns) / noneRate, spread(shippedRuns));
    }
    System.out.printf("states-keyed: spread over rounds %s%n", spread(by.get(Config.STATES)));

    // Per program, per configuration: java -jar runs trace's programs, so it is pooled with trace.
    Map<String, List<Run>> programTables = new LinkedHashMap<>();
    programTables.put("trace", runs.stream().filter(r -> r.config() == Config.AGENT || r.config() == Config.LAUNCHER).toList());
    programTables.put("run", by.getOrDefault(Config.DAEMON, List.of()));
    programTables.put("trace@base", by.getOrDefault(Config.BASE_TRACE, List.of()));
    programTables.put("run@base", by.getOrDefault(Config.BASE_RUN, List.of()));
    programTables.put("states-keyed", by.get(Config.STATES));
    programTables.values().removeIf(List::isEmpty);
    programTables.forEach((what, rs) -> {
      long conns = rs.stream().mapToLong(Run::connections).sum();
      Map<String, long[]> sum = new LinkedHashMap<>();
      for (Run r : rs) {
        r.perProgram().forEach((label, v) -> {
          long[] t = sum.computeIfAbsent(label, l -> new long[2]);
          t[0] += v[0];
          t[1] += v[1];
        });
      }
      System.out.printf("%nBPF programs of %s, %d runs (%d connections), most costly first%n", what, rs.size(), conns);
      System.out.printf("%-55s %10s %9s %11s %7s%n", "program (concern, attach point)", "runs/conn", "ns/run", "s/100k", "share");
      long totalNs = sum.values().stream().mapToLong(v -> v[1]).sum();
      sum.entrySet().stream()
          .sorted((x, y) -> Long.compare(y.getValue()[1], x.getValue()[1]))
          .forEach(e -> System.out.printf("%-55s %10.2f %9.0f %11.3f %6.0f%%%n", e.getKey(),
              (double) e.getValue()[0] / conns,
              e.getValue()[0] == 0 ? 0.0 : (double) e.getValue()[1] / e.getValue()[0],
              e.getValue()[1] / 1e9 / conns * 1e5,
              totalNs == 0 ? 0.0 : 100.0 * e.getValue()[1] / totalNs));
    });
    System.out.println();
  }

  /** The lowest and highest total cost of one round's run, in s per 100k connections. */
  private static String spread(List<Run> rs) {
    double lo = rs.stream().mapToDouble(r -> r.bpfPer100k() + r.treePer100k()).min().orElse(Double.NaN);
    double hi = rs.stream().mapToDouble(r -> r.bpfPer100k() + r.treePer100k()).max().orElse(Double.NaN);
    return String.format("%.3f-%.3f", lo, hi);
  }

  /** The 1, 5 and 15 minute load averages. */
  private static String loadAverage() throws IOException {
    String[] f = Files.readString(Path.of("/proc/loadavg")).split(" ");
    return f[0] + " " + f[1] + " " + f[2];
  }

  /** The storm client's CPU per 100k connections, pooled; its rise over "none" is what tracing costs in its context. */
  private static double stormPer100k(List<Run> rs) {
    long conns = rs.stream().filter(r -> !Double.isNaN(r.stormCpuS())).mapToLong(Run::connections).sum();
    return rs.stream().mapToDouble(Run::stormCpuS).filter(d -> !Double.isNaN(d)).sum() / conns * 1e5;
  }

  private static double meanRate(List<Run> rs) {
    return rs.stream().mapToDouble(Run::rate).average().orElse(Double.NaN);
  }

  private static double per100k(List<Run> rs, boolean bpf) {
    long conns = rs.stream().mapToLong(Run::connections).sum();
    double seconds = rs.stream().mapToDouble(r -> bpf ? r.bpfNs() / 1e9 : r.treeCpuS()).sum();
    return seconds / conns * 1e5;
  }

  /** The jar is built by `package`, after the tests: say so when the sources are newer than it. */
  private static void warnIfStale() throws IOException {
    long jar = Files.getLastModifiedTime(JAR).toMillis();
    try (Stream<Path> sources = Stream.concat(Files.walk(Path.of("src", "main")), Files.walk(Path.of("bpf")))) {
      long newer = sources.filter(Files::isRegularFile).filter(p -> {
        try {
          return Files.getLastModifiedTime(p).toMillis() > jar;
        } catch (IOException e) {
          return false;
        }
      }).count();
      if (newer > 0) {
        System.out.printf("WARNING: %d source files are newer than %s: rebuild it (mvn -q -o package -DskipTests)%n", newer, JAR);
      }
    }
  }

  private static Path compileStorm() throws IOException, InterruptedException {
    Path binary = WORK.resolve("storm").toAbsolutePath();
    run("gcc", "-O2", "-Wall", "-o", binary.toString(), Path.of("bpf", "test", "storm.c").toString());
    return binary;
  }

  /** Runs a command to its end (at most 60 s) and returns its output; fails when it fails. */
  private static String run(String... command) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    CompletableFuture<byte[]> out = readAll(p.getInputStream());
    if (!p.waitFor(60, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new IOException(String.join(" ", command) + " timed out");
    }
    String text = new String(join(out), StandardCharsets.UTF_8);
    if (p.exitValue() != 0) {
      throw new IOException(String.join(" ", command) + " exited " + p.exitValue() + ": " + text.strip());
    }
    return text;
  }

  private static CompletableFuture<byte[]> readAll(InputStream in) {
    return CompletableFuture.supplyAsync(() -> {
      try {
        return in.readAllBytes();
      } catch (IOException e) {
        return new byte[0];
      }
    });
  }

  private static byte[] join(CompletableFuture<byte[]> f) throws IOException {
    try {
      return f.get(10, TimeUnit.SECONDS);
    } catch (InterruptedException | ExecutionException | TimeoutException e) {
      throw new IOException("reading a child's output", e);
    }
  }

  /** Every child dies with the test's JVM, even killed with SIGKILL. */
  private static List<String> dieWithUs(String... command) {
    List<String> full = new ArrayList<>(List.of("setpriv", "--pdeathsig", "KILL", "--"));
    full.addAll(List.of(command));
    return full;
  }

  /**
   * A child's output, read line by line on a daemon thread: a count, the last lines, and the first line that
   * matches {@code ready}.
   */
  static final class Lines {
    private final AtomicLong count = new AtomicLong();
    private final Deque<String> tail = new ArrayDeque<>();
    private final CompletableFuture<String> ready = new CompletableFuture<>();

    Lines(InputStream in, String name, Predicate<String> readyWhen) {
      Thread t = new Thread(() -> {
        try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
          String line;
          while ((line = r.readLine()) != null) {
            count.incrementAndGet();
            synchronized (tail) {
              tail.addLast(line.length() > 300 ? line.substring(0, 300) + "…" : line);
              if (tail.size() > 20) {
                tail.removeFirst();
              }
            }
            if (!ready.isDone() && readyWhen.test(line)) {
              ready.complete(line);
            }
          }
        } catch (IOException e) {
          // the child is gone
        }
        ready.complete(null);
      }, name);
      t.setDaemon(true);
      t.start();
    }

    /** The first line that matched, or null when the stream ended or the time ran out first. */
    String awaitReady(Duration timeout) throws InterruptedException {
      try {
        return ready.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
      } catch (ExecutionException | TimeoutException e) {
        return null;
      }
    }

    long count() {
      return count.get();
    }

    String tail() {
      synchronized (tail) {
        return String.join("\n", tail);
      }
    }
  }

  /** A tracer under test: the agent's JVM with its bpftrace child(ren), or one bpftrace. */
  static final class Tracer implements AutoCloseable {
    private final boolean agent;
    private final Process process;
    private final Lines stdout;
    private final Lines stderr;
    private final Set<Long> bpftracePids = new TreeSet<>();
    private String expectedTier = "tracepoint";

    private Tracer(boolean agent, Process process, Lines stdout, Lines stderr) {
      this.agent = agent;
      this.process = process;
      this.stdout = stdout;
      this.stderr = stderr;
    }

    /** backlog-agent trace, the real jar, scoped to the storm's namespace; ready once it says it traces. */
    static Tracer agent(long netns, boolean launcher, boolean ftrace, String programs) throws IOException, InterruptedException {
      List<String> command = new ArrayList<>();
      if (launcher) {
        command.add(Path.of("agent", "backlog-agent").toString());
      } else {
        command.addAll(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-jar", JAR.toString()));
      }
      command.addAll(List.of("trace", "--netns", Long.toString(netns),
          "--duration", Long.toString(READY_TIMEOUT.toSeconds() + 60),
          "--state", WORK.resolve("requested-backlogs.json").toString()));
      if (!programs.isBlank()) {
        command.addAll(List.of("--programs", programs));
      }
      if (!BPFTRACE.equals("bpftrace")) {
        command.addAll(List.of("--bpftrace", BPFTRACE));
      }
      if (AGENT_STATES) {
        command.add("--states");
      }
      if (ftrace) {
        command.addAll(List.of("--tier", "ftrace"));
      }
      ProcessBuilder builder = new ProcessBuilder(dieWithUs(command.toArray(String[]::new)));
      // The launcher runs the same jar (and the java of this JVM, not whichever is first on PATH).
      builder.environment().put("BACKLOG_AGENT_JAR", JAR.toAbsolutePath().toString());
      builder.environment().put("JAVA_HOME", System.getProperty("java.home"));
      builder.environment().remove("BACKLOG_AGENT_JAVA_OPTS");
      Process p = builder.start();
      p.getOutputStream().close();
      Tracer t = new Tracer(true, p, new Lines(p.getInputStream(), "agent-stdout", l -> false),
          new Lines(p.getErrorStream(), "agent-stderr", l -> l.startsWith("tracing at tier")));
      t.expectedTier = ftrace ? "ftrace" : "tracepoint";
      t.awaitReady(t.stderr, "the agent's 'tracing at tier' line");
      return t;
    }

    /**
     * backlog-agent run through the launcher, as systemd starts it: the default configuration but for the state
     * file's path, a free port for the Prometheus endpoint (nothing scrapes it) and, if given, the programs'
     * directory. Host-wide, as the daemon is. Ready once it prints its "tier …" line (programs attached).
     */
    static Tracer daemon(String programs, String label) throws IOException, InterruptedException {
      Path etc = Files.createDirectories(WORK.resolve("etc-" + label.replace('@', '-')));
      Path config = DaemonProcess.config(etc, """
          state_file: %s
          exporters: {prometheus: {port: %d}}
          """.formatted(WORK.resolve("daemon-state.json").toAbsolutePath(), DaemonProcess.freePort())
          + (programs.isBlank() ? "" : "programs: " + Path.of(programs).toAbsolutePath() + "\n")
          + (BPFTRACE.equals("bpftrace") ? "" : "bpftrace: " + Path.of(BPFTRACE).toAbsolutePath() + "\n"));
      ProcessBuilder builder = new ProcessBuilder(dieWithUs(Path.of("agent", "backlog-agent").toString(), "run",
          "--config", config.toString()));
      builder.environment().put("BACKLOG_AGENT_JAR", JAR.toAbsolutePath().toString());
      builder.environment().put("JAVA_HOME", System.getProperty("java.home"));
      builder.environment().remove("BACKLOG_AGENT_JAVA_OPTS");
      builder.environment().keySet().removeIf(k -> k.startsWith("OTEL_"));
      Process p = builder.start();
      p.getOutputStream().close();
      Tracer t = new Tracer(true, p, new Lines(p.getInputStream(), "daemon-stdout", l -> l.startsWith("tier ")),
          new Lines(p.getErrorStream(), "daemon-stderr", l -> false));
      t.awaitReady(t.stdout, "the daemon's 'tier …' line");
      return t;
    }

    /** The baseline: states-keyed.bt run directly, counting state changes in a kernel map. */
    static Tracer states() throws IOException, InterruptedException {
      Process p = new ProcessBuilder(dieWithUs(BPFTRACE, "-f", "json", STATES_PROGRAM, INTERVAL_S))
          .start();
      p.getOutputStream().close();
      Tracer t = new Tracer(false, p, new Lines(p.getInputStream(), "states-stdout", l -> l.contains("\"attached_probes\"")),
          new Lines(p.getErrorStream(), "states-stderr", l -> false));
      t.awaitReady(t.stdout, "bpftrace's attached_probes line");
      return t;
    }

    private void awaitReady(Lines lines, String what) throws InterruptedException {
      String line = lines.awaitReady(READY_TIMEOUT);
      if (line == null) {
        // A child that refused to start has said why on stderr: let the reader threads take it in.
        process.waitFor(2, TimeUnit.SECONDS);
        Thread.sleep(200);
        close();
        throw new AssertionError("no " + what + " within " + READY_TIMEOUT.toSeconds() + " s; stderr:\n" + stderr.tail()
            + "\nstdout:\n" + stdout.tail());
      }
      if (agent) {
        assertThat(line).as("the agent's tier line").containsAnyOf("tracing at tier " + expectedTier, "tier " + expectedTier);
      }
    }

    boolean isAgent() {
      return agent;
    }

    long root() {
      return process.pid();
    }

    long stdoutLines() {
      return stdout.count();
    }

    /** The live bpftrace processes of this tracer: the process itself, or the agent's children. */
    List<Long> bpftraceProcesses() {
      List<Long> pids = new ArrayList<>();
      if (TracerCost.comm(root()).equals("bpftrace")) {
        pids.add(root());
      }
      process.descendants().filter(h -> TracerCost.comm(h.pid()).equals("bpftrace")).forEach(h -> pids.add(h.pid()));
      bpftracePids.addAll(pids);
      return pids;
    }

    Set<Integer> programIds() throws IOException {
      Set<Integer> ids = new TreeSet<>();
      for (long pid : bpftraceProcesses()) {
        ids.addAll(TracerCost.programIds(pid));
      }
      return ids;
    }

    /** Labels each program by the concern and attach point of the program file its bpftrace runs. */
    Map<Integer, String> labels(Map<Integer, ProgramStat> stats) throws IOException {
      Map<Integer, String> labels = new LinkedHashMap<>();
      for (long pid : bpftraceProcesses()) {
        List<String> args = TracerCost.cmdline(pid);
        Path file = args.stream().filter(a -> a.endsWith(".bt")).map(Path::of).findFirst().orElse(null);
        if (file == null || !Files.isReadable(file)) {
          continue;
        }
        List<String> positional = args.subList(args.indexOf(file.toString()) + 1, args.size());
        String concern = file.getFileName().toString().replaceFirst("\\.bt$", "");
        List<TracerCost.AttachPoint> points = TracerCost.attachPoints(Files.readString(file), concern, positional);
        Set<Integer> own = TracerCost.programIds(pid);
        Map<Integer, ProgramStat> mine = new LinkedHashMap<>();
        stats.forEach((id, s) -> {
          if (own.contains(id)) {
            mine.put(id, s);
          }
        });
        labels.putAll(TracerCost.label(mine, points));
      }
      return labels;
    }

    /** SIGTERM (the agent stops its children and detaches), then SIGKILL; no bpftrace of ours may remain. */
    @Override
    public void close() throws InterruptedException {
      bpftraceProcesses();
      List<ProcessHandle> descendants = process.descendants().toList();
      process.destroy();
      if (!process.waitFor(15, TimeUnit.SECONDS)) {
        descendants.forEach(ProcessHandle::destroyForcibly);
        process.destroyForcibly();
        process.waitFor(5, TimeUnit.SECONDS);
      }
      for (ProcessHandle d : descendants) {
        d.destroyForcibly();
      }
      for (long pid : bpftracePids) {
        ProcessHandle.of(pid).ifPresent(h -> {
          h.destroyForcibly();
          try {
            h.onExit().get(5, TimeUnit.SECONDS);
          } catch (InterruptedException | ExecutionException | TimeoutException e) {
            // reported by the assertion below
          }
        });
        assertThat(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false))
            .as("bpftrace %d still running after its tracer stopped", pid).isFalse();
      }
    }
  }

  /** One storm: the accept/close server and the connect/close client, both inside the namespace. */
  static final class Storm implements AutoCloseable {
    /** {@code cpuS}: the client's user + system CPU, from bash's {@code times} after it ended. */
    record Result(long connections, long failed, double rate, double cpuS) {}

    private final Process server;
    private final Lines serverOut;
    private final double seconds;
    private Process client;
    private Lines clientOut;

    private Storm(Process server, Lines serverOut, double seconds) {
      this.server = server;
      this.serverOut = serverOut;
      this.seconds = seconds;
    }

    static Storm start(BenchNetns ns, Path binary, double seconds) throws IOException, InterruptedException {
      Process server = new ProcessBuilder(dieWithUs("ip", "netns", "exec", ns.name(), binary.toString(), "server",
          Integer.toString(PORT), Double.toString(seconds + 1))).redirectErrorStream(true).start();
      Storm s = new Storm(server, new Lines(server.getInputStream(), "storm-server", l -> l.startsWith("listening")), seconds);
      try {
        if (s.serverOut.awaitReady(Duration.ofSeconds(10)) == null) {
          throw new IOException("the storm server did not listen: " + s.serverOut.tail());
        }
        // Through bash, whose `times` prints the client's CPU after it ends: the kernel's work for each connection
        // (and a tracer's tracepoints, ftrace's ring buffer writes among them) runs in the client's context.
        s.client = new ProcessBuilder(dieWithUs("ip", "netns", "exec", ns.name(), "bash", "-c", "\"$@\"; times", "storm",
            binary.toString(), "client", "127.0.0.1", Integer.toString(PORT), Double.toString(seconds)))
            .redirectErrorStream(true).start();
        s.clientOut = new Lines(s.client.getInputStream(), "storm-client", l -> l.startsWith("connections "));
      } catch (IOException | RuntimeException e) {
        s.close();
        throw e;
      }
      return s;
    }

    void awaitClient() throws IOException, InterruptedException {
      if (!client.waitFor((long) (seconds * 1000) + 15_000, TimeUnit.MILLISECONDS)) {
        throw new IOException("the storm client did not finish");
      }
    }

    /** From the client's line: "connections N failed F rate R/s". */
    Result result() throws IOException, InterruptedException {
      String line = clientOut.awaitReady(Duration.ofSeconds(10));
      if (line == null) {
        throw new IOException("no result from the storm client: " + clientOut.tail());
      }
      String[] w = line.split("\\s+");
      for (int i = 0; i < 40 && Double.isNaN(childrenCpu(clientOut.tail())); i++) {
        Thread.sleep(50); // bash prints `times` right after the client's last line
      }
      return new Result(Long.parseLong(w[1]), Long.parseLong(w[3]), Double.parseDouble(w[5].replace("/s", "")),
          childrenCpu(clientOut.tail()));
    }

    /** bash's `times`: a line for the shell, then "XmY.YYYs ZmW.WWWs" for its children (the client). */
    static double childrenCpu(String tail) {
      java.util.regex.Matcher m = java.util.regex.Pattern.compile("(?m)^(\\d+)m([\\d.]+)s (\\d+)m([\\d.]+)s$").matcher(tail);
      double last = Double.NaN;
      while (m.find()) {
        last = Integer.parseInt(m.group(1)) * 60 + Double.parseDouble(m.group(2)) + Integer.parseInt(m.group(3)) * 60
            + Double.parseDouble(m.group(4));
      }
      return last;
    }

    @Override
    public void close() throws InterruptedException {
      if (!server.waitFor((long) (seconds * 1000) + 5_000, TimeUnit.MILLISECONDS)) {
        server.destroyForcibly();
      }
      if (client != null) {
        client.destroyForcibly();
        client.waitFor(5, TimeUnit.SECONDS);
      }
      server.destroyForcibly();
      server.waitFor(5, TimeUnit.SECONDS);
    }
  }
}
