package dev.backlogagent.watch;

import dev.backlogagent.bpf.BpfProgram;
import dev.backlogagent.bpf.Concern;
import dev.backlogagent.bpf.SupervisorStatus;
import dev.backlogagent.bpf.Tracing;
import dev.backlogagent.decode.BpftraceRecord;
import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.decode.TraceEvent;
import dev.backlogagent.decode.TraceEventDecoder;
import dev.backlogagent.bcc.LibbpfToolsTier;
import dev.backlogagent.ftrace.FtraceTier;
import dev.backlogagent.kernel.HostCapabilities;
import dev.backlogagent.kernel.KernelProbe;
import dev.backlogagent.kernel.Tier;
import dev.backlogagent.kernel.TracepointSymbols;
import dev.backlogagent.listener.IntervalReport;
import dev.backlogagent.listener.Inventory;
import dev.backlogagent.listener.InventoryReader;
import dev.backlogagent.listener.ListenerCorrelator;
import dev.backlogagent.listener.RequestedBacklogBook;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Predicate;

/**
 * The agent's watch over listeners, shared by `trace` and the daemon: the BPF children of the chosen
 * tier, the decoder, the correlator and the inventory. Events arrive on the children's threads and go
 * to the correlator (and, when rare, to {@link Observer#event}); {@link #closeInterval()} reads the
 * inventory and closes the correlator's interval, on the caller's clock.
 */
public final class ListenerWatch implements AutoCloseable {
  private static final System.Logger LOG = System.getLogger(ListenerWatch.class.getName());

  /**
   * What to watch and how.
   *
   * @param tier the tier to run, or null to take the one the kernel probe finds
   * @param bpftrace the bpftrace binary, or null to search for it
   * @param programs where to read the bpftrace programs from, or null for those packaged in the jar
   * @param slowAcceptMillis the accept wait from which a connection is reported on its own
   * @param states whether to run the state-transition program
   * @param stateFile where requested backlogs are kept between runs
   * @param scope which namespace and port the inventory reads
   * @param events which listener keys' events to keep (the rest are not correlated)
   */
  public record Settings(
      Tier tier,
      Path bpftrace,
      Path programs,
      Duration interval,
      long slowAcceptMillis,
      boolean states,
      Path stateFile,
      InventoryReader.Scope scope,
      Predicate<ListenerKey> events) {}

  /** Who hears about rare events as they come (listen calls, resets, slow accepts, overflow starts). */
  public interface Observer {
    void event(TraceEvent event, Inventory latest);
  }

  private final Settings settings;
  private final HostCapabilities host;
  private final Tier tier;
  private final String tierReason;
  private final RequestedBacklogBook requested;
  private final InventoryReader reader;
  private final ListenerCorrelator correlator;
  private final TraceEventDecoder decoder = new TraceEventDecoder();
  private final AtomicReference<Inventory> latest = new AtomicReference<>();
  private final AtomicLong decoded = new AtomicLong();
  private final AtomicLong undecodable = new AtomicLong();
  private final Path workDirectory;
  private final Observer observer;
  private Tracing tracing;
  private FtraceTier ftrace;
  private LibbpfToolsTier libbpfTools;
  private final List<Tracing.Failure> ftraceFailures = new ArrayList<>();

  private ListenerWatch(Settings settings, Observer observer) throws IOException {
    this.settings = settings;
    this.observer = observer;
    this.host = KernelProbe.builder().bpftrace(settings.bpftrace()).build().probe();
    this.tier = settings.tier() == null ? host.tier() : settings.tier();
    this.tierReason = settings.tier() == null ? host.tierReason() : "forced";
    this.requested = RequestedBacklogBook.load(settings.stateFile());
    this.reader = InventoryReader.ofHost(requested);
    this.correlator = new ListenerCorrelator(TracepointSymbols.dropReasons());
    this.workDirectory = Files.createTempDirectory("backlog-agent-");
  }

  /**
   * Probes the kernel, takes the first inventory (the baseline every delta is measured from) and starts
   * the BPF programs of the tier; returns once they attached, or were reported as unable to.
   */
  public static ListenerWatch start(Settings settings, Observer observer) throws IOException, InterruptedException {
    ListenerWatch watch = new ListenerWatch(settings, observer);
    try {
      watch.begin();
    } catch (IOException | InterruptedException | RuntimeException e) {
      watch.close();
      throw e;
    }
    return watch;
  }

  private void begin() throws IOException, InterruptedException {
    Inventory first = reader.read(settings.scope());
    latest.set(first);
    correlator.close(first);
    if (tier == Tier.FTRACE) {
      startFtrace();
      return;
    }
    if (tier == Tier.LIBBPF_TOOLS) {
      libbpfTools = LibbpfToolsTier.start(LibbpfToolsTier.Settings.of(settings.interval()),
          event -> deliver(List.of(event)), latest::get);
      for (LibbpfToolsTier.Failure f : libbpfTools.failures()) {
        ftraceFailures.add(new Tracing.Failure(f.concern(), f.reason()));
      }
      return;
    }
    boolean fentry = host.attach() != null && host.attach().fentry() != null && host.attach().fentry().works();
    Path bpftracePath = settings.bpftrace() != null ? settings.bpftrace()
        : host.bpftrace() != null && host.bpftrace().path() != null ? Path.of(host.bpftrace().path()) : Path.of("bpftrace");
    List<BpfProgram> chosen = new ArrayList<>();
    for (Concern concern : Concern.forTier(tier, fentry, settings.states())) {
      chosen.add(BpfProgram.load(concern, settings.programs()));
    }
    long intervalSeconds = Math.max(1, settings.interval().toSeconds());
    Tracing.Launch launch = new Tracing.Launch(bpftracePath,
        List.of(Long.toString(intervalSeconds), Long.toString(settings.slowAcceptMillis())),
        workDirectory, Duration.ofSeconds(60));
    tracing = Tracing.start(chosen, launch, this::take);
  }

  // The ftrace tier: no BPF, no child; its events join the same pipeline as the programs' records.
  private void startFtrace() {
    try {
      ftrace = FtraceTier.start(FtraceTier.Settings.of(settings.interval(), settings.scope().port()),
          event -> deliver(List.of(event)), latest::get);
      for (FtraceTier.Failure f : ftrace.failures()) {
        ftraceFailures.add(new Tracing.Failure(f.concern(), "ftrace: " + f.reason()));
      }
    } catch (IOException e) {
      for (Concern concern : List.of(Concern.LISTEN, Concern.HANDSHAKES, Concern.SYNACK, Concern.DROPS, Concern.RESETS)) {
        ftraceFailures.add(new Tracing.Failure(concern, "ftrace: " + e.getMessage()));
      }
    }
  }

  /** Decodes one bpftrace record; runs on a child's reader thread. */
  private void take(BpftraceRecord record) {
    List<TraceEvent> events;
    try {
      events = decoder.decode(record);
    } catch (TraceEventDecoder.UndecodableException e) {
      if (undecodable.incrementAndGet() <= 10) {
        LOG.log(System.Logger.Level.WARNING, "skipped an undecodable event: {0}", e.getMessage());
      }
      return;
    }
    deliver(events);
  }

  /** Hands decoded events to the correlator (and the observer); from any source's thread. */
  private void deliver(List<TraceEvent> events) {
    decoded.addAndGet(events.size());
    for (TraceEvent event : events) {
      if (event instanceof TraceEvent.ListenCall call) {
        requested.record(call); // kept whatever the filter: `listeners` shows every listener's request
      }
      if (event instanceof TraceEvent.AtListener at && !settings.events().test(at.key())) {
        continue;
      }
      correlator.accept(event);
      if (observer != null && (event instanceof TraceEvent.ListenCall || event instanceof TraceEvent.ResetSent
          || event instanceof TraceEvent.SlowAccept || event instanceof TraceEvent.OverflowStart)) {
        observer.event(event, latest.get());
      }
    }
  }

  /** Reads the inventory and closes the correlator's interval; keeps the requested-backlog book on disk. */
  public IntervalReport closeInterval() throws IOException {
    Inventory now = reader.read(settings.scope());
    for (String skipped : now.skipped()) {
      LOG.log(System.Logger.Level.INFO, "skipped {0}", skipped);
    }
    latest.set(now);
    IntervalReport report = correlator.close(now);
    requested.saveIfChanged(settings.stateFile());
    return report;
  }

  public Tier tier() {
    return tier;
  }

  /** Why this tier: the probe's reason, or "forced". */
  public String tierReason() {
    return tierReason;
  }

  public HostCapabilities host() {
    return host;
  }

  public Inventory latest() {
    return latest.get();
  }

  public List<Concern> running() {
    if (ftrace != null) {
      return ftrace.running();
    }
    if (libbpfTools != null) {
      return libbpfTools.running();
    }
    return tracing == null ? List.of() : tracing.running();
  }

  public List<Tracing.Failure> failures() {
    if (tier == Tier.FTRACE || tier == Tier.LIBBPF_TOOLS) {
      return List.copyOf(ftraceFailures);
    }
    return tracing == null ? List.of() : tracing.failures();
  }

  /** The ftrace tier's counts (records read, skipped over the cap, lost, unattributed), when it runs. */
  public java.util.Optional<FtraceTier.Stats> ftraceStats() {
    return ftrace == null ? java.util.Optional.empty() : java.util.Optional.of(ftrace.stats());
  }

  /** The libbpf-tools tier's counts (lines, malformed, skipped, unattributed), when it runs. */
  public java.util.Optional<LibbpfToolsTier.Stats> libbpfToolsStats() {
    return libbpfTools == null ? java.util.Optional.empty() : java.util.Optional.of(libbpfTools.stats());
  }

  /** The ftrace tier's tracefs instance, when it runs. */
  public java.util.Optional<String> ftraceInstance() {
    return ftrace == null ? java.util.Optional.empty() : java.util.Optional.of(ftrace.instanceName());
  }

  public List<SupervisorStatus> supervisors() {
    return tracing == null ? List.of() : tracing.status();
  }

  public List<Long> childPids() {
    return tracing == null ? List.of() : tracing.childPids();
  }

  /** Events decoded since the start. */
  public long decodedEvents() {
    return decoded.get();
  }

  /** Records that broke the programs' contract, skipped. */
  public long undecodableRecords() {
    return undecodable.get();
  }

  /**
   * Stops the BPF children (they print their last maps on the way out); the inventory and the correlator
   * stay usable, so that a last interval can still be closed.
   */
  public void stopPrograms() {
    if (tracing != null) {
      tracing.close();
    }
    if (ftrace != null) {
      ftrace.close();
    }
    if (libbpfTools != null) {
      libbpfTools.close();
    }
  }

  @Override
  public void close() {
    stopPrograms();
    requested.saveIfChanged(settings.stateFile());
    try (var files = Files.list(workDirectory)) {
      for (Path f : files.toList()) {
        Files.deleteIfExists(f);
      }
      Files.deleteIfExists(workDirectory);
    } catch (IOException e) {
      // a leftover temp directory is harmless
    }
  }
}
