package dev.backlogagent.bcc;

import dev.backlogagent.bpf.Concern;
import dev.backlogagent.decode.AddressFamily;
import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.decode.TraceEvent;
import dev.backlogagent.ftrace.ListenerAttribution;
import dev.backlogagent.ftrace.TaskNamespaces;
import dev.backlogagent.kernel.LibbpfToolsProbe;
import dev.backlogagent.listener.Inventory;
import dev.backlogagent.listener.NetNamespace;
import dev.backlogagent.procfs.NetNamespaces;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * The libbpf-tools tier: bcc's prebuilt CO-RE programs instead of bpftrace (a few MB each against bpftrace's
 * ~110 MB). {@code solisten} gives listen() calls, {@code tcpstates -w -L PORTS} the state changes of the
 * listening ports (restarted when the set of ports changes), both supervised, their lines decoded
 * ({@link ToolLines}) and attributed to listeners as the ftrace tier's events are ({@link ListenerAttribution}:
 * the tools print no namespace either). {@code tcpsynbl INTERVAL} adds the accept queue's depth at each third ACK,
 * per backlog limit: its histograms go to the listener that alone has that limit, or alone took handshakes
 * lately, else they are counted as unattributed. Handshakes past a cap per interval are counted as skipped; a
 * malformed line is counted and skipped.
 */
public final class LibbpfToolsTier implements AutoCloseable {
  private static final System.Logger LOG = System.getLogger(LibbpfToolsTier.class.getName());
  private static final int MAX_PORTS = 10_240; // tcpstates' sports map

  /** Per interval: handshake lines beyond {@code handshakes} are only counted. */
  public record Settings(Duration interval, long handshakeCap, Duration attachTimeout) {
    public static Settings of(Duration interval) {
      return new Settings(interval, 200_000, Duration.ofSeconds(60));
    }
  }

  /** A concern that does not run, and why. */
  public record Failure(Concern concern, String reason) {}

  /**
   * Counts since the start. {@code depthSamples}: tcpsynbl samples given to a listener; {@code depthUnattributed}:
   * those of a backlog limit that several listeners share (or none has).
   */
  public record Stats(long lines, long malformed, long skipped, long unattributed, long listensUnknownRequest,
      long depthSamples, long depthUnattributed) {}

  private final Settings settings;
  private final Consumer<TraceEvent> sink;
  private final Supplier<Inventory> inventory;
  private final ListenerAttribution attribution;
  private final TaskNamespaces tasks = new TaskNamespaces();
  private final List<Concern> running = new ArrayList<>();
  private final List<Failure> failures = new ArrayList<>();
  private final Object lock = new Object();
  private ToolSupervisor solisten;
  private ToolSupervisor tcpstates;
  private ToolSupervisor tcpsynbl;
  private final SynBacklogDepths depths;
  private TreeSet<Integer> tracedPorts = new TreeSet<>();
  private final Thread refresher;
  private volatile boolean closed;
  private long intervalStart = System.nanoTime();
  private long handshakesThisInterval;
  private final AtomicLong lines = new AtomicLong();
  private final AtomicLong malformed = new AtomicLong();
  private final AtomicLong skipped = new AtomicLong();
  private final AtomicLong unattributed = new AtomicLong();
  private final AtomicLong unknownRequest = new AtomicLong();

  private LibbpfToolsTier(Settings settings, Consumer<TraceEvent> sink, Supplier<Inventory> inventory,
      Supplier<Inventory> fresh) {
    this.settings = settings;
    this.sink = sink;
    this.inventory = inventory;
    this.attribution = new ListenerAttribution(inventory);
    this.depths = new SynBacklogDepths(inventory, fresh);
    this.refresher = new Thread(this::refreshLoop, "libbpf-tools-ports");
    this.refresher.setDaemon(true);
  }

  /** Starts the tools that attach here; returns once each attached or failed. */
  public static LibbpfToolsTier start(Settings settings, Consumer<TraceEvent> sink, Supplier<Inventory> inventory)
      throws InterruptedException {
    return start(settings, sink, inventory, inventory);
  }

  /** As {@link #start(Settings, Consumer, Supplier)}, with {@code fresh} reading the inventory now when asked. */
  public static LibbpfToolsTier start(Settings settings, Consumer<TraceEvent> sink, Supplier<Inventory> inventory,
      Supplier<Inventory> fresh) throws InterruptedException {
    LibbpfToolsTier tier = new LibbpfToolsTier(settings, sink, inventory, fresh);
    Optional<Path> solisten = LibbpfToolsProbe.find("solisten");
    if (solisten.isPresent()) {
      tier.solisten = new ToolSupervisor(solisten.get(), List.of(), tier::onSolisten).start();
    } else {
      tier.failures.add(new Failure(Concern.LISTEN, "libbpf-tools: solisten not found"));
    }
    tier.tcpstates = tier.startTcpstates();
    tier.tcpsynbl = tier.startTcpsynbl();
    if (tier.solisten != null) {
      if (tier.solisten.awaitAttach(settings.attachTimeout())) {
        tier.running.add(Concern.LISTEN);
      } else {
        tier.failures.add(new Failure(Concern.LISTEN, "solisten: " + tier.solisten.status().lastError()));
        tier.solisten.close();
        tier.solisten = null;
      }
    }
    if (tier.tcpstates != null) {
      if (tier.tcpstates.awaitAttach(settings.attachTimeout())) {
        tier.running.add(Concern.HANDSHAKES);
      } else {
        tier.failures.add(new Failure(Concern.HANDSHAKES, "tcpstates: " + tier.tcpstates.status().lastError()));
      }
    }
    if (tier.tcpsynbl != null && !tier.tcpsynbl.awaitAttach(settings.attachTimeout())) {
      // Not a concern of its own: without it the handshakes run with no queue depth, as its status line says.
      LOG.log(System.Logger.Level.WARNING, "tcpsynbl did not attach: {0}", tier.tcpsynbl.status().lastError());
      tier.tcpsynbl.close();
      tier.tcpsynbl = null;
    }
    tier.refresher.start();
    return tier;
  }

  public List<Concern> running() {
    return List.copyOf(running);
  }

  /** The tool a concern runs from at this tier, for its status line. */
  public static String source(Concern concern) {
    return switch (concern) {
      case LISTEN -> "libbpf-tools:solisten";
      case HANDSHAKES -> "libbpf-tools:tcpstates";
      default -> "libbpf-tools";
    };
  }

  /** What a concern loses at this tier against its bpftrace program (null: nothing), without tcpsynbl. */
  public static String lost(Concern concern) {
    return lost(concern, false);
  }

  /** What a concern loses at this tier, with or without tcpsynbl's queue depths. */
  public static String lost(Concern concern, boolean queueDepth) {
    return switch (concern) {
      case LISTEN -> "solisten sees the backlog after the somaxconn clamp: a request at somaxconn is not claimed";
      case HANDSHAKES -> (queueDepth
          ? "queue depth from tcpsynbl in power-of-two slots, per backlog limit (a listener's only when it alone has"
              + " that limit or alone took handshakes)"
          : "no queue depth") + "; the namespace found by address and port; ports that begin listening"
          + " are traced from the next interval";
      default -> null;
    };
  }

  /** What a concern loses here, as the tools that attached say. */
  public String lostHere(Concern concern) {
    return lost(concern, tcpsynbl != null);
  }

  public List<Failure> failures() {
    return List.copyOf(failures);
  }

  public Stats stats() {
    synchronized (lock) {
      return new Stats(lines.get(), malformed.get(), skipped.get(), unattributed.get(), unknownRequest.get(),
          depths.samples(), depths.unattributed());
    }
  }

  /** The ports tcpstates is restricted to now. */
  public List<Integer> tracedPorts() {
    synchronized (lock) {
      return List.copyOf(tracedPorts);
    }
  }

  // tcpstates restricted to the listening ports of the latest inventory: the state changes of connections to
  // other ports never leave the kernel.
  private ToolSupervisor startTcpstates() {
    Optional<Path> path = LibbpfToolsProbe.find("tcpstates");
    if (path.isEmpty()) {
      failures.add(new Failure(Concern.HANDSHAKES, "libbpf-tools: tcpstates not found"));
      return null;
    }
    TreeSet<Integer> ports = listeningPorts();
    List<String> args = new ArrayList<>(List.of("-w"));
    if (!ports.isEmpty() && ports.size() <= MAX_PORTS) {
      args.addAll(List.of("-L", String.join(",", ports.stream().map(String::valueOf).toList())));
    }
    synchronized (lock) {
      tracedPorts = ports;
    }
    return new ToolSupervisor(path.get(), args, this::onTcpstates).start();
  }

  // tcpsynbl prints its histograms once per interval (whole seconds: it takes an integer) and clears them.
  private ToolSupervisor startTcpsynbl() {
    Optional<Path> path = LibbpfToolsProbe.find("tcpsynbl");
    if (path.isEmpty()) {
      return null;
    }
    long seconds = Math.max(1, Math.round(settings.interval().toMillis() / 1000.0));
    return new ToolSupervisor(path.get(), List.of(Long.toString(seconds)), this::onTcpsynbl).start();
  }

  private TreeSet<Integer> listeningPorts() {
    TreeSet<Integer> ports = new TreeSet<>();
    Inventory now = inventory.get();
    if (now != null) {
      now.listeners().forEach(l -> ports.add(l.key().port()));
    }
    return ports;
  }

  private void refreshLoop() {
    while (!closed) {
      try {
        Thread.sleep(settings.interval().toMillis());
      } catch (InterruptedException e) {
        return;
      }
      TreeSet<Integer> now = listeningPorts();
      boolean changed;
      synchronized (lock) {
        changed = !now.equals(tracedPorts) && !closed && tcpstates != null;
      }
      if (changed) {
        ToolSupervisor old = tcpstates;
        ToolSupervisor next = startTcpstates(); // the new one attaches before the old one goes: no gap
        try {
          next.awaitAttach(settings.attachTimeout());
        } catch (InterruptedException e) {
          next.close();
          return;
        }
        tcpstates = next;
        old.close();
      }
    }
  }

  private void onTcpstates(String line) {
    lines.incrementAndGet();
    ToolLines.StateChange change;
    try {
      Optional<ToolLines.StateChange> parsed = ToolLines.tcpstates(line);
      if (parsed.isEmpty()) {
        return;
      }
      change = parsed.get();
    } catch (ToolLines.MalformedLine e) {
      malformedLine(e);
      return;
    }
    synchronized (lock) {
      rollInterval();
      if (change.newState().equals("LISTEN")) {
        long netns = tasks.of(change.pid());
        if (netns > 0) {
          attribution.learn(change.skaddr(),
              new ListenerKey(netns, AddressFamily.of(change.family()), change.localAddress(), change.localPort()));
        }
      } else if (change.oldState().equals("LISTEN") && change.newState().equals("SYN_RECV")) {
        if (++handshakesThisInterval > settings.handshakeCap()) {
          skipped.incrementAndGet();
          return;
        }
        ListenerAttribution.Result r = attribution.byPortOrTask(AddressFamily.of(change.family()), change.localAddress(),
            change.localPort(), () -> tasks.of(change.pid()));
        if (r.outcome() == ListenerAttribution.Outcome.AMBIGUOUS || r.outcome() == ListenerAttribution.Outcome.UNKNOWN) {
          unattributed.incrementAndGet();
          return;
        }
        depths.handshake(r.key());
        emit(new TraceEvent.ListenerCount(TraceEvent.Counted.HANDSHAKES, r.key(), null, 1));
      } else if (change.oldState().equals("LISTEN")) {
        attribution.forget(change.skaddr());
      }
    }
  }

  private void onTcpsynbl(String line) {
    lines.incrementAndGet();
    synchronized (lock) {
      rollInterval();
      try {
        depths.line(line).forEach(this::emit);
      } catch (ToolLines.MalformedLine e) {
        malformedLine(e);
      }
    }
  }

  private void malformedLine(ToolLines.MalformedLine e) {
    if (malformed.incrementAndGet() <= 10) {
      LOG.log(System.Logger.Level.WARNING, "skipped a malformed line: {0}", e.getMessage());
    }
  }

  private void onSolisten(String line) {
    lines.incrementAndGet();
    ToolLines.ListenCall call;
    try {
      Optional<ToolLines.ListenCall> parsed = ToolLines.solisten(line);
      if (parsed.isEmpty()) {
        return;
      }
      call = parsed.get();
    } catch (ToolLines.MalformedLine e) {
      malformedLine(e);
      return;
    }
    if (call.ret() != 0 || !call.proto().startsWith("TCP")) {
      return;
    }
    long netns = NetNamespaces.inodeOf(Path.of("/proc", Integer.toString(call.pid()), "ns", "net"));
    Long somaxconn = somaxconn(netns);
    // The effective backlog from sock_diag in the caller's namespace, as the inventory reads it. solisten's own
    // number is inet_listen()'s, after the somaxconn clamp (and 0 for listen(-1) on 6.1, recorded): it is the
    // request only when it equals the effective backlog below somaxconn; otherwise the request is unknown, and
    // no request is claimed.
    Optional<dev.backlogagent.netlink.ListeningSocket> socket =
        dev.backlogagent.ftrace.ListenResolver.listenerOf(call.pid(), call.address(), call.port());
    if (netns <= 0 || somaxconn == null || socket.isEmpty() || socket.get().backlog() != call.backlog()
        || call.backlog() >= somaxconn) {
      unknownRequest.incrementAndGet();
      return;
    }
    ListenerKey key = new ListenerKey(netns, AddressFamily.of(call.family()), call.address(), call.port());
    emit(new TraceEvent.ListenCall(key, call.pid(), call.comm(), call.backlog(), socket.get().backlog()));
  }

  private Long somaxconn(long netns) {
    Inventory now = inventory.get();
    if (now == null) {
      return null;
    }
    return now.namespace(netns).map(NetNamespace::sysctls).map(s -> (long) s.somaxconn()).orElse(null);
  }

  private void rollInterval() {
    long now = System.nanoTime();
    if (now - intervalStart >= settings.interval().toNanos()) {
      intervalStart = now;
      handshakesThisInterval = 0;
      tasks.clear();
      depths.nextInterval();
    }
  }

  private void emit(TraceEvent event) {
    try {
      sink.accept(event);
    } catch (RuntimeException e) {
      LOG.log(System.Logger.Level.WARNING, "the agent refused an event: {0}", e.toString());
    }
  }

  /** Status lines of the tools, for the agent's status. */
  public List<String> toolStatus() {
    List<String> out = new ArrayList<>();
    for (ToolSupervisor s : new ToolSupervisor[] {solisten, tcpstates, tcpsynbl}) {
      if (s != null) {
        ToolSupervisor.Status st = s.status();
        out.add(st.tool() + (st.attached() ? " attached" : " not attached") + ", " + st.restarts() + " restarts"
            + (st.lastError() == null ? "" : ", last error: " + st.lastError()));
      }
    }
    return out;
  }

  @Override
  public void close() {
    closed = true;
    refresher.interrupt();
    if (solisten != null) {
      solisten.close();
    }
    if (tcpstates != null) {
      tcpstates.close();
    }
    if (tcpsynbl != null) {
      tcpsynbl.close();
    }
  }
}
