package dev.backlogagent.watch;

import dev.backlogagent.bpf.Concern;
import dev.backlogagent.bpf.ConcernStatus;
import dev.backlogagent.bpf.ProgramChoice;
import dev.backlogagent.bpf.TracepointFormats;
import dev.backlogagent.bpf.SupervisorStatus;
import dev.backlogagent.bpf.Tracing;
import dev.backlogagent.decode.BpftraceRecord;
import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.decode.TraceEvent;
import dev.backlogagent.decode.TraceEventDecoder;
import dev.backlogagent.bcc.LibbpfToolsTier;
import dev.backlogagent.ftrace.FtraceTier;
import dev.backlogagent.kernel.ChildProcess;
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
import java.util.Map;
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
  /** How often the programs print and clear their maps ($1). */
  static final long FLUSH_SECONDS = 1;

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
   * @param attachTimeout the least time a program may take to compile and attach (more on a slow machine)
   * @param btf a BTF file of this kernel for bpftrace, or null for the kernel's own (found by trying)
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
      Predicate<ListenerKey> events,
      Duration attachTimeout,
      Path btf) {
    public Settings(Tier tier, Path bpftrace, Path programs, Duration interval, long slowAcceptMillis, boolean states,
        Path stateFile, InventoryReader.Scope scope, Predicate<ListenerKey> events, Duration attachTimeout) {
      this(tier, bpftrace, programs, interval, slowAcceptMillis, states, stateFile, scope, events, attachTimeout, null);
    }
  }

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
  private final List<Tracing.Failure> lowerRungFailures = new ArrayList<>();
  // An event can come before the listener it names is in the inventory (a listener that began after the
  // last read): then the inventory is read again at once, at most every REREAD_GAP, and an event whose
  // listener is still unknown is held until the next read (the interval's), so that it is joined to its
  // listener and process rather than printed without them.
  private static final long REREAD_GAP_NANOS = Duration.ofMillis(200).toNanos();
  private static final int MAX_HELD_EVENTS = 1000;
  private final Object inventoryLock = new Object();
  private long lastReadNanos = System.nanoTime();
  private final List<TraceEvent> held = new ArrayList<>();
  private final AtomicLong rereads = new AtomicLong();

  private ListenerWatch(Settings settings, Observer observer) throws IOException {
    this.settings = settings;
    this.observer = observer;
    this.host = KernelProbe.builder().bpftrace(settings.bpftrace()).btf(settings.btf()).build().probe();
    this.tier = settings.tier() == null ? host.tier() : settings.tier();
    this.tierReason = settings.tier() == null ? host.tierReason() : "forced";
    this.requested = RequestedBacklogBook.load(settings.stateFile());
    this.reader = InventoryReader.ofHost(requested);
    this.correlator = new ListenerCorrelator(TracepointSymbols.dropReasons());
    this.workDirectory = WorkDirectory.create(Path.of(System.getProperty("java.io.tmpdir")));
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
          event -> deliver(List.of(event)), latest::get, this::reread);
      for (LibbpfToolsTier.Failure f : libbpfTools.failures()) {
        lowerRungFailures.add(new Tracing.Failure(f.concern(), f.reason()));
      }
      return;
    }
    boolean fentry = host.attach() != null && host.attach().fentry() != null && host.attach().fentry().works();
    Path bpftracePath = settings.bpftrace() != null ? settings.bpftrace()
        : host.bpftrace() != null && host.bpftrace().path() != null ? Path.of(host.bpftrace().path()) : Path.of("bpftrace");
    // Each concern's program by what this kernel's tracepoints offer (variants for older kernels).
    List<ProgramChoice> choices = ProgramChoice.choose(tier, fentry, settings.states(), TracepointFormats.ofThisKernel());
    if (!choices.isEmpty()) {
      try {
        // As root, run no bpftrace that others could replace, whichever tier was asked for.
        dev.backlogagent.config.FileTrust.forThisProcess().checkExecutable(bpftracePath.isAbsolute() ? bpftracePath
            : ChildProcess.findExecutable(bpftracePath.toString()).orElse(bpftracePath), "bpftrace executable");
      } catch (dev.backlogagent.config.ConfigException e) {
        throw new IOException(e.getMessage(), e);
      }
    }
    long probeMillis = host.attach() != null && host.attach().tracepoint() != null ? host.attach().tracepoint().millis() : 0;
    Duration floor = settings.attachTimeout() == null ? Tracing.DEFAULT_ATTACH_TIMEOUT : settings.attachTimeout();
    // The programs flush their maps every second whatever the interval (the correlator adds the flushes up):
    // a child killed with SIGKILL, which prints nothing on the way out, then takes at most a second of counts.
    Tracing.Launch launch = Tracing.Launch.fitting(bpftracePath,
        List.of(Long.toString(FLUSH_SECONDS), Long.toString(settings.slowAcceptMillis())),
        workDirectory, floor, probeMillis, host.btf() == null ? Map.of() : host.btf().bpftraceEnvironment());
    tracing = Tracing.start(choices, settings.programs(), launch, this::take);
    List<Concern> running = tracing.running();
    correlator.acceptsObserved(running.contains(Concern.ACCEPT_WAIT)); // every variant sees each accept
    // The baseline again, now that the programs see: the first interval then starts when tracing does,
    // instead of spanning the seconds bpftrace took to compile and attach.
    synchronized (inventoryLock) {
      Inventory attached = reader.read(settings.scope());
      lastReadNanos = System.nanoTime();
      latest.set(attached);
      correlator.close(attached);
    }
  }

  // The ftrace tier: no BPF, no child; its events join the same pipeline as the programs' records.
  private void startFtrace() {
    try {
      ftrace = FtraceTier.start(FtraceTier.Settings.of(settings.interval(), settings.scope().port()),
          event -> deliver(List.of(event)), latest::get);
      for (FtraceTier.Failure f : ftrace.failures()) {
        lowerRungFailures.add(new Tracing.Failure(f.concern(), "ftrace: " + f.reason()));
      }
    } catch (IOException e) {
      for (Concern concern : List.of(Concern.LISTEN, Concern.HANDSHAKES, Concern.SYNACK, Concern.DROPS, Concern.RESETS)) {
        lowerRungFailures.add(new Tracing.Failure(concern, "ftrace: " + e.getMessage()));
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
      // Resets are not handed on one by one: the correlator sums them per interval (a flood's spoofed sources
      // would otherwise make the inventory be read again for each).
      if (observer != null && (event instanceof TraceEvent.ListenCall
          || event instanceof TraceEvent.SlowAccept || event instanceof TraceEvent.OverflowStart)) {
        observe(event);
      }
    }
  }

  /** Hands a rare event on with an inventory that knows its listener, reading it again or holding the event. */
  private void observe(TraceEvent event) {
    Inventory inventory = latest.get();
    if (!knows(inventory, event)) {
      inventory = reread();
      // A reset may concern no listener at all (a client socket, a closed port): it is not held.
      if (!knows(inventory, event) && !(event instanceof TraceEvent.ResetSent)) {
        synchronized (inventoryLock) {
          if (held.size() < MAX_HELD_EVENTS) {
            held.add(event);
            return;
          }
        }
      }
    }
    observer.event(event, inventory);
  }

  /**
   * Whether the inventory has the event's listener (for a listen() call, what the line needs is its namespace's
   * somaxconn, but a namespace is not known by its inode alone: inodes are reused once freed, and a read that has
   * the listener has its namespace as it is now).
   */
  static boolean knows(Inventory inventory, TraceEvent event) {
    return inventory != null && event instanceof TraceEvent.AtListener at && ListenerCorrelator.join(inventory, at.key()) != null;
  }

  /** The inventory read again now, unless it was read less than REREAD_GAP ago; the latest one if reading fails. */
  private Inventory reread() {
    synchronized (inventoryLock) {
      if (System.nanoTime() - lastReadNanos < REREAD_GAP_NANOS) {
        return latest.get();
      }
      lastReadNanos = System.nanoTime();
      try {
        Inventory now = reader.read(settings.scope());
        latest.set(now);
        rereads.incrementAndGet();
        return now;
      } catch (IOException | RuntimeException e) {
        LOG.log(System.Logger.Level.WARNING, "could not read the inventory again for an event: {0}", e.toString());
        return latest.get();
      }
    }
  }

  /** How often an event made the inventory be read before its interval ended. */
  public long inventoryRereads() {
    return rereads.get();
  }

  /** Reads the inventory and closes the correlator's interval; keeps the requested-backlog book on disk. */
  public IntervalReport closeInterval() throws IOException {
    java.time.Instant readStarted = java.time.Instant.now();
    Inventory now;
    List<TraceEvent> waiting;
    synchronized (inventoryLock) {
      now = reader.read(settings.scope());
      lastReadNanos = System.nanoTime();
      latest.set(now);
      waiting = List.copyOf(held);
      held.clear();
    }
    requested.prune(now, settings.scope(), readStarted);
    for (String skipped : now.skipped()) {
      LOG.log(System.Logger.Level.INFO, "skipped {0}", skipped);
    }
    // Before the interval's own lines: these events happened during it.
    for (TraceEvent event : waiting) {
      observer.event(event, now);
    }
    IntervalReport report = correlator.close(now);
    requested.saveIfChanged(settings.stateFile());
    return report;
  }

  /**
   * Reads the inventory now, between intervals (fresh gauges for an exporter); the interval is not closed.
   */
  public Inventory readInventory() throws IOException {
    synchronized (inventoryLock) {
      Inventory now = reader.read(settings.scope());
      lastReadNanos = System.nanoTime();
      latest.set(now);
      return now;
    }
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
      return List.copyOf(lowerRungFailures);
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

  /** One status line per concern: runs, as which variant, or why it cannot. */
  public List<ConcernStatus> concerns() {
    if (tier == Tier.FTRACE || tier == Tier.LIBBPF_TOOLS) {
      return lowerRungConcerns();
    }
    return tracing == null ? List.of() : tracing.concerns();
  }

  private List<ConcernStatus> lowerRungConcerns() {
    java.util.function.Function<Concern, String> lost = ftrace != null ? ftrace::lostHere
        : libbpfTools != null ? libbpfTools::lostHere : LibbpfToolsTier::lost;
    return lowerRungConcerns(tier, running(), lowerRungFailures, settings.states(), lost);
  }

  /**
   * The concern lines of the ftrace and libbpf-tools tiers: what runs from which events or tools, what it
   * loses against the BPF programs, and what cannot run and why.
   */
  public static List<ConcernStatus> lowerRungConcerns(Tier tier, List<Concern> runs, List<Tracing.Failure> failures,
      boolean states, java.util.function.Function<Concern, String> lostAtThisTier) {
    List<ConcernStatus> out = new ArrayList<>();
    for (Concern c : Concern.values()) {
      java.util.Optional<Tracing.Failure> failed = failures.stream().filter(f -> f.concern() == c).findFirst();
      if (runs.contains(c)) {
        String source = tier == Tier.FTRACE ? FtraceTier.source(c) : LibbpfToolsTier.source(c);
        String lost = lostAtThisTier.apply(c);
        out.add(new ConcernStatus(c, lost == null ? ConcernStatus.State.RUNS : ConcernStatus.State.DEGRADED, source, lost));
      } else if (c == Concern.STATES && !states) {
        out.add(new ConcernStatus(c, ConcernStatus.State.OFF, null, "not asked for"));
      } else {
        out.add(new ConcernStatus(c, ConcernStatus.State.CANNOT, null, failed.map(Tracing.Failure::reason)
            .orElse("not in the " + tier.label() + " tier (it needs BPF)")));
      }
    }
    return out;
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
