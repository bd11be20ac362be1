package dev.backlogagent.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.backlogagent.bpf.ConcernStatus;
import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.kernel.TracepointSymbols;
import dev.backlogagent.listener.InventoryReader;
import dev.backlogagent.listener.IntervalReport;
import dev.backlogagent.report.Json;
import dev.backlogagent.report.TraceLine;
import dev.backlogagent.report.TraceLines;
import dev.backlogagent.watch.ListenerWatch;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** Live tracing for a person at a terminal: one line per event, each explained by its listener and settings. */
@Command(
    footer = "%nReference: docs/trace.md in the source tree.",
    mixinStandardHelpOptions = true,
    name = "trace",
    description = "Follows accept-queue overflows, SYN drops, resets and listen() calls live, one line per event.")
final class TraceCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Option(names = "--json", description = "Print JSON lines (fields in docs/trace.md) instead of sentences.")
  boolean json;

  @Mixin ListenerScopeOptions scopeOptions;

  @Mixin TracerOptions tracer;

  @Option(names = "--duration", paramLabel = "S", description = "Stop after S seconds (default: until Ctrl-C).")
  Double duration;

  @Option(names = "--states", description = "Also print TCP state-transition summaries each interval.")
  boolean states;

  @Option(names = "--interval", paramLabel = "S", defaultValue = "1", description = "Summary interval in seconds (default: ${DEFAULT-VALUE}).")
  int interval;

  @Option(names = "--slow-accept-ms", paramLabel = "MS", defaultValue = "100", description = "Report connections that waited longer than MS in the accept queue (default: ${DEFAULT-VALUE}).")
  int slowAcceptMs;

  @Option(names = "--state", paramLabel = "FILE", defaultValue = DEFAULT_STATE_FILE,
      description = "Where to keep the listen() calls seen, for `listeners` to show requested backlogs (default: ${DEFAULT-VALUE}).")
  Path stateFile;

  static final String DEFAULT_STATE_FILE = "/var/lib/backlog-agent/requested-backlogs.json";


  @Override
  public Integer call() throws Exception {
    validate();
    PrintWriter out = spec.commandLine().getOut();
    PrintWriter err = spec.commandLine().getErr();
    InventoryReader.Scope scope = scopeOptions.resolve();
    Long scopeNetns = scope.netns();
    TraceLines lines = new TraceLines(TracepointSymbols.resetReasons());
    ObjectMapper mapper = Json.mapper();

    Object printLock = new Object();
    java.util.function.Consumer<TraceLine> print = line -> {
      if (line == null) {
        return;
      }
      synchronized (printLock) {
        try {
          out.println(json ? mapper.writeValueAsString(line) : line.time().substring(11, 19) + " " + line.text());
        } catch (IOException e) {
          out.println(line.text());
        }
        out.flush();
      }
    };

    ListenerWatch.Settings settings = new ListenerWatch.Settings(tracer.forcedTier(), tracer.bpftrace, tracer.programs,
        Duration.ofSeconds(interval), slowAcceptMs, states, stateFile, scope, key -> inScope(key, scopeNetns),
        tracer.attachTimeout(), tracer.btf);
    CountDownLatch stop = new CountDownLatch(1);
    Thread hook = new Thread(stop::countDown, "trace-shutdown");
    Runtime.getRuntime().addShutdownHook(hook);
    ListenerWatch.Observer observer = (event, latest) -> print.accept(lines.event(event, latest));
    try (ListenerWatch watch = ListenerWatch.start(settings, observer)) {
      err.println("tracing at tier " + watch.tier().label() + " (" + watch.tierReason() + ")"
          + ": " + (watch.running().isEmpty() ? "no BPF programs, counters and inventory only" : "programs " + watch.running()));
      err.println(watch.host().bpftrace().line());
      for (ConcernStatus c : watch.concerns()) {
        err.println("concern " + c.line());
      }
      err.flush();
      long deadline = duration == null ? Long.MAX_VALUE : System.nanoTime() + (long) (duration * 1e9);
      // Intervals at a fixed rate from the baseline, so that the time an inventory takes (long under a
      // flood) does not stretch every interval beyond --interval.
      long tick = TimeUnit.SECONDS.toNanos(interval);
      long next = System.nanoTime() + tick;
      while (System.nanoTime() < deadline) {
        long wait = Math.min(next - System.nanoTime(), deadline - System.nanoTime());
        next = Math.max(next + tick, System.nanoTime() + tick / 2);
        if (stop.await(Math.max(0, wait), TimeUnit.NANOSECONDS)) {
          break;
        }
        IntervalReport report = watch.closeInterval();
        for (String skipped : report.inventory().skipped()) {
          err.println("skipped " + skipped);
        }
        for (TraceLine line : lines.interval(report, states)) {
          print.accept(line);
        }
      }
      watch.ftraceStats().ifPresent(s -> err.println("ftrace: " + s.records() + " records, " + s.decoded() + " decoded, "
          + s.skipped() + " skipped over the cap, " + s.lost() + " lost in the kernel, " + s.unattributed()
          + " of no known listener (" + s.ambiguous() + " ambiguous), " + s.malformed() + " malformed"));
      watch.libbpfToolsStats().ifPresent(s -> err.println("libbpf-tools: " + s.lines() + " lines, " + s.malformed()
          + " malformed, " + s.skipped() + " skipped over the cap, " + s.unattributed() + " of no known listener, "
          + s.listensUnknownRequest() + " listen() at somaxconn (request unknown), " + s.depthSamples()
          + " queue-depth samples from tcpsynbl given to a listener, " + s.depthUnattributed()
          + " of a backlog limit no single listener has"));
      if (watch.undecodableRecords() > 0) {
        err.println("skipped " + watch.undecodableRecords() + " undecodable event(s)");
      }
    } finally {
      try {
        Runtime.getRuntime().removeShutdownHook(hook);
      } catch (IllegalStateException e) {
        // already shutting down: the hook has run
      }
    }
    return ExitCode.OK;
  }

  private boolean inScope(ListenerKey key, Long scopeNetns) {
    Integer port = scopeOptions.port;
    return (scopeNetns == null || key.netns() == scopeNetns) && (port == null || key.port() == port);
  }

  private void validate() {
    if (duration != null && !(duration > 0)) {
      throw new BadInputException("--duration must be a positive number of seconds, not " + duration);
    }
    if (interval < 1 || interval > 3600) {
      throw new BadInputException("--interval must be between 1 and 3600 seconds, not " + interval);
    }
    if (slowAcceptMs < 1) {
      throw new BadInputException("--slow-accept-ms must be at least 1, not " + slowAcceptMs);
    }
    tracer.validate();
  }
}
