package dev.backlogagent.daemon;

import dev.backlogagent.bpf.SupervisorStatus;
import dev.backlogagent.bpf.ConcernStatus;

import dev.backlogagent.config.AgentConfig;
import dev.backlogagent.config.ConfigException;
import dev.backlogagent.config.ConfigLoader;
import dev.backlogagent.decode.TraceEvent;
import dev.backlogagent.export.AgentStatus;
import dev.backlogagent.export.BacklogMetrics;
import dev.backlogagent.export.ExportHealth;
import dev.backlogagent.export.IncidentSpans;
import dev.backlogagent.export.ListenerBook;
import dev.backlogagent.export.ListenerHistograms;
import dev.backlogagent.export.ListenerFilter;
import dev.backlogagent.export.ListenerIdentity;
import dev.backlogagent.export.SlowAcceptSpans;
import dev.backlogagent.export.Telemetry;
import dev.backlogagent.kernel.Tier;
import dev.backlogagent.listener.IntervalReport;
import dev.backlogagent.listener.Inventory;
import dev.backlogagent.listener.InventoryReader;
import dev.backlogagent.listener.Listener;
import dev.backlogagent.listener.ListenerCorrelator;
import dev.backlogagent.watch.ListenerWatch;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The daemon: keeps the listener watch running, turns each interval into metrics, incident spans and a
 * summary line, and answers stop and reload requests (SIGTERM, SIGHUP) on its own thread, between
 * intervals, so that no export ever sees half an update.
 */
public final class Daemon {
  private static final System.Logger LOG = System.getLogger(Daemon.class.getName());
  /** What systemd allows for a stop is 5 s in our unit; the children and the last export share it. */
  private static final long LAST_EXPORT_MILLIS = 3000;
  /** The whole stop, from the request to the exit, with room left for the JVM to exit. */
  private static final long STOP_MILLIS = 4500;
  /** How old queue and limit gauges may be at a scrape. */
  private static final java.time.Duration GAUGE_AGE = java.time.Duration.ofSeconds(1);

  /** How the daemon tells its supervisor (systemd) where it is. */
  public interface Lifecycle {
    void ready(String status);

    void reloading();

    void stopping();

    void status(String status);

    Lifecycle NONE = new Lifecycle() {
      @Override
      public void ready(String status) {}

      @Override
      public void reloading() {}

      @Override
      public void stopping() {}

      @Override
      public void status(String status) {}
    };
  }

  private enum Request { STOP, RELOAD }

  private final Path configFile;
  private final Path btfOverride;
  private final ConfigLoader loader;
  private final PrintWriter out;
  private final Lifecycle lifecycle;
  private final BlockingQueue<Request> requests = new LinkedBlockingQueue<>();
  private final ListenerBook book = new ListenerBook();
  private final ExportHealth health = new ExportHealth();
  private final SummaryLine summary = new SummaryLine();

  private volatile AgentConfig config;
  private volatile ListenerFilter filter;
  private volatile ListenerWatch watch;
  private Telemetry telemetry;
  private BacklogMetrics metrics;
  private IncidentSpans incidents;
  private SlowAcceptSpans slowAccepts;
  /** Counts of watches that were replaced by a reload, so that the agent's counters never go back. */
  private WatchCounts replaced = WatchCounts.NONE;

  /** What a listener watch counted: events decoded and lost, lines malformed, children restarted. */
  private record WatchCounts(long decoded, long lost, long malformed, long restarts) {
    static final WatchCounts NONE = new WatchCounts(0, 0, 0, 0);

    static WatchCounts of(ListenerWatch w) {
      long lost = 0;
      long malformed = w.undecodableRecords();
      long restarts = 0;
      for (SupervisorStatus s : w.supervisors()) {
        lost += s.lostEvents();
        malformed += s.malformedLines();
        restarts += s.restarts();
      }
      return new WatchCounts(w.decodedEvents(), lost, malformed, restarts);
    }

    WatchCounts plus(WatchCounts o) {
      return new WatchCounts(decoded + o.decoded, lost + o.lost, malformed + o.malformed, restarts + o.restarts);
    }
  }

  public Daemon(Path configFile, AgentConfig config, ConfigLoader loader, PrintWriter out, Lifecycle lifecycle) {
    this(configFile, config, loader, out, lifecycle, null);
  }

  /** The same; {@code btf} (run --btf), when not null, wins over the file's btf key, also after a reload. */
  public Daemon(Path configFile, AgentConfig config, ConfigLoader loader, PrintWriter out, Lifecycle lifecycle, Path btf) {
    this.configFile = configFile;
    this.btfOverride = btf;
    config = btf == null ? config : config.withBtf(btf);
    this.config = config;
    this.filter = new ListenerFilter(config.listeners());
    this.loader = loader;
    this.out = out;
    this.lifecycle = lifecycle;
  }

  public void requestStop() {
    requests.offer(Request.STOP);
  }

  public void requestReload() {
    requests.offer(Request.RELOAD);
  }

  /**
   * `run --check`: the configuration was read; now the OTEL_* settings and the BPF programs are tried
   * (attached, then detached). 0 when everything works, 1 when something cannot run.
   */
  public int check() throws IOException, InterruptedException, ConfigException {
    ConfiguredTargets.check(config, source());
    AgentConfig.Exporters noPort = new AgentConfig.Exporters(
        new AgentConfig.Prometheus(false, config.exporters().prometheus().host(), config.exporters().prometheus().port()),
        config.exporters().otlp());
    try (Telemetry t = Telemetry.start(noPort, new ExportHealth(), cardinality(config), new ListenerHistograms(book))) {
      out.println("exporters: " + t.description().replace("no exporter", "OTLP off")
          + (config.exporters().prometheus().enabled() ? ", Prometheus on " + config.exporters().prometheus().host() + ":"
          + config.exporters().prometheus().port() + " (not bound by --check)" : ""));
    } catch (Telemetry.StartException e) {
      if (e.badConfiguration()) {
        throw new ConfigException(e.getMessage());
      }
      out.println("exporters: " + e.getMessage());
      return 1;
    }
    try (ListenerWatch w = ListenerWatch.start(settings(config), null)) {
      out.println(started(w));
      concernLines(w).forEach(out::println);
      out.flush();
      return w.failures().isEmpty() && w.tier() != Tier.NONE ? 0 : 1;
    }
  }

  /** Runs until a stop request; returns the exit code. */
  public int run() throws IOException, InterruptedException, ConfigException {
    ConfiguredTargets.check(config, source());
    try {
      startTelemetry(config);
    } catch (Telemetry.StartException e) {
      if (e.badConfiguration()) {
        throw new ConfigException(e.getMessage());
      }
      throw new IOException(e.getMessage());
    }
    watch = ListenerWatch.start(settings(config), this::onEvent);
    // Series at once, from the baseline inventory; then gauges at most a second old whenever an exporter
    // collects (counters move once per interval).
    book.refresh(watch.latest(), filter, config.listeners().max());
    book.readFrom(() -> watch.readInventory(), GAUGE_AGE);
    out.println(started(watch) + "; exporting to " + telemetry.description());
    concernLines(watch).forEach(out::println);
    out.flush();
    lifecycle.ready(statusLine());

    long next = System.nanoTime() + config.interval().toNanos();
    while (true) {
      Request request = requests.poll(Math.max(0, next - System.nanoTime()), TimeUnit.NANOSECONDS);
      if (request == Request.STOP) {
        break;
      }
      if (request == Request.RELOAD) {
        reload();
        continue;
      }
      if (request == null) {
        tick();
        next += config.interval().toNanos();
        if (next < System.nanoTime()) {
          next = System.nanoTime() + config.interval().toNanos(); // fell behind (a suspended VM): don't burst
        }
      }
    }
    stop();
    return 0;
  }

  /** One interval: inventory, correlation, metrics, incidents, summary. Never fatal. */
  private void tick() {
    IntervalReport report;
    try {
      report = watch.closeInterval();
    } catch (IOException | RuntimeException e) {
      LOG.log(System.Logger.Level.WARNING, "interval skipped, the inventory could not be read: {0}", e.getMessage());
      return;
    }
    publish(report);
  }

  private void publish(IntervalReport report) {
    AgentConfig c = config;
    book.update(report, filter, c.listeners().max());
    incidents.update(report, filter, c.incidents().quietPeriod());
    if (c.summary()) {
      out.println(summary.line(report, book, filter, incidents.openIncidents(), status(), health, telemetry.otlp()));
      out.flush();
    }
  }

  /** Rare events from the children's threads: slow accepts become spans, overflow starts date incidents. */
  private void onEvent(TraceEvent event, Inventory latest) {
    if (event instanceof TraceEvent.SlowAccept slow && filter.admits(slow.key(), slow.comm(), latest)) {
      slowAccepts.record(slow, ListenerCorrelator.join(latest, slow.key()), epochNanosNow(), System.nanoTime());
    } else if (event instanceof TraceEvent.OverflowStart start && filter.admits(start.key(), null, latest)) {
      Listener l = ListenerCorrelator.join(latest, start.key());
      if (l != null) {
        incidents.overflowStarted(ListenerIdentity.of(l), Instant.now());
      }
    }
  }

  private void reload() {
    AgentConfig next;
    try {
      next = loader.load(configFile);
      next = btfOverride == null ? next : next.withBtf(btfOverride);
      ConfiguredTargets.check(next, source());
    } catch (ConfigException e) {
      LOG.log(System.Logger.Level.WARNING, "reload refused, keeping the running configuration: {0}", e.getMessage());
      lifecycle.status("reload refused: " + e.getMessage());
      return;
    }
    lifecycle.reloading();
    AgentConfig before = config;
    config = next;
    filter = new ListenerFilter(next.listeners());
    if (!next.exporters().equals(before.exporters()) || cardinality(next) != cardinality(before)) {
      stopTelemetry();
      try {
        startTelemetry(next);
      } catch (Telemetry.StartException e) {
        LOG.log(System.Logger.Level.WARNING, "the new exporters cannot start ({0}); going back to the previous ones", e.getMessage());
        config = new AgentConfig(next.interval(), next.tier(), next.bpftrace(), next.btf(), next.programs(), next.stateFile(),
            next.states(), next.summary(), next.listeners(), next.incidents(), before.exporters(), next.attachTimeout());
        try {
          startTelemetry(config);
        } catch (Telemetry.StartException again) {
          LOG.log(System.Logger.Level.ERROR, "the previous exporters cannot start either: {0}", again.getMessage());
        }
      }
    }
    if (!settings(next).equals(settings(before))) {
      ListenerWatch old = watch;
      replaced = replaced.plus(WatchCounts.of(old));
      old.close();
      try {
        watch = ListenerWatch.start(settings(next), this::onEvent);
      } catch (IOException | InterruptedException | RuntimeException e) {
        LOG.log(System.Logger.Level.ERROR, "the listener watch cannot restart: {0}; retrying with the previous settings", e.getMessage());
        config = before;
        try {
          watch = ListenerWatch.start(settings(before), this::onEvent);
        } catch (IOException | InterruptedException | RuntimeException again) {
          throw new IllegalStateException("the listener watch cannot start: " + again.getMessage(), again);
        }
      }
    }
    out.println("configuration reloaded from " + (configFile == null ? ConfigLoader.DEFAULT_FILE : configFile) + ": " + started(watch)
        + "; exporting to " + (telemetry == null ? "nothing" : telemetry.description()));
    out.flush();
    lifecycle.ready(statusLine());
  }

  private String source() {
    return (configFile == null ? ConfigLoader.DEFAULT_FILE : configFile).toString();
  }

  private void stop() {
    lifecycle.stopping();
    // The children stop first (their last maps are printed on the way out), then one last interval is
    // taken and exported, so that what was counted up to the stop is not lost.
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(STOP_MILLIS);
    watch.stopPrograms();
    tick();
    long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
    stopTelemetry(Math.max(200, Math.min(LAST_EXPORT_MILLIS, left)));
    watch.close();
    out.println("stopped");
    out.flush();
  }

  private void startTelemetry(AgentConfig c) throws Telemetry.StartException {
    telemetry = Telemetry.start(c.exporters(), health, cardinality(c), new ListenerHistograms(book));
    metrics = new BacklogMetrics(telemetry.meter(), book, this::status);
    if (incidents == null) {
      incidents = new IncidentSpans(telemetry.tracer());
      slowAccepts = new SlowAcceptSpans(telemetry.tracer());
    } else {
      incidents.useTracer(telemetry.tracer());
      slowAccepts.useTracer(telemetry.tracer());
    }
  }

  private void stopTelemetry() {
    stopTelemetry(LAST_EXPORT_MILLIS);
  }

  private void stopTelemetry(long millis) {
    if (telemetry == null) {
      return;
    }
    incidents.endAll();
    telemetry.close(millis); // collects and pushes once more before the exporters stop
    metrics.close();
    telemetry = null;
  }

  /**
   * Series per instrument: every exported listener times the values of its widest attribute (five trouble
   * kinds, four flags), plus room for those that left during an export period.
   */
  private static int cardinality(AgentConfig c) {
    return Math.max(2000, c.listeners().max() * 10);
  }

  static ListenerWatch.Settings settings(AgentConfig c) {
    return new ListenerWatch.Settings(c.tier(), c.bpftrace(), c.programs(), c.interval(), c.incidents().slowAccept().toMillis(),
        c.states(), c.stateFile(), InventoryReader.Scope.ALL, key -> true, c.attachTimeout(), c.btf());
  }

  AgentStatus status() {
    ListenerWatch w = watch;
    WatchCounts c = w == null ? replaced : replaced.plus(WatchCounts.of(w));
    return new AgentStatus(c.decoded(), c.lost(), c.malformed(), c.restarts(), w == null ? "none" : w.tier().label(),
        health.lastSuccess(), health.failures(), w == null ? List.of() : w.concerns());
  }

  private String statusLine() {
    return "tier " + watch.tier().label() + ", " + watch.running().size() + " BPF concern(s) running";
  }

  /** bpftrace's version, then one line per concern: what runs, as which variant, what cannot and why. */
  static List<String> concernLines(ListenerWatch w) {
    List<String> lines = new ArrayList<>();
    lines.add(w.host().bpftrace().line());
    for (ConcernStatus c : w.concerns()) {
      lines.add("concern " + c.line());
    }
    return lines;
  }

  private static String started(ListenerWatch w) {
    return "tier " + w.tier().label() + " (" + w.tierReason() + "): "
        + (w.running().isEmpty() ? "no BPF programs, counters and inventory only" : "programs " + w.running());
  }

  private static long epochNanosNow() {
    Instant now = Instant.now();
    return TimeUnit.SECONDS.toNanos(now.getEpochSecond()) + now.getNano();
  }

  /** For tests: the current configuration. */
  AgentConfig config() {
    return Objects.requireNonNull(config);
  }
}
