package dev.backlogagent.ftrace;

import dev.backlogagent.bpf.Concern;
import dev.backlogagent.decode.AddressFamily;
import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.decode.TraceEvent;
import dev.backlogagent.listener.Inventory;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * The ftrace tier: listener events from the kernel's own trace events, with no BPF and no child process.
 * It makes a tracefs instance of its own, enables there the events of {@link ListenerEvents} with filters
 * that keep only listener-related records in the kernel, and one thread polls the instance's per-CPU
 * {@code trace_pipe_raw}, decodes each page through the events' format files, attributes each record to a
 * listener ({@link ListenerAttribution}) and hands the agent the same {@link TraceEvent}s the bpftrace
 * programs produce: listen calls one by one, counts per listener summed and handed over at every poll.
 *
 * <p>Bounded: past {@link Caps} records of a kind in one interval, records are only counted as skipped. What
 * the kernel could not store (a full buffer) is counted as lost. The instance is removed by {@link #close()}
 * and by a shutdown hook; one left by a killed agent is removed by the next {@link #start}.
 */
public final class FtraceTier implements AutoCloseable {
  private static final System.Logger LOG = System.getLogger(FtraceTier.class.getName());

  /** At most this many records of each kind are decoded per interval; the rest are counted as skipped. */
  public record Caps(long listens, long handshakes, long synacks, long drops, long resets) {
    public static final Caps DEFAULT = new Caps(256, 200_000, 100_000, 100_000, 2_000);

    long of(ListenerEvents.Kind kind) {
      return switch (kind) {
        case LISTEN -> listens * 2; // an enter and an exit record per call
        case HANDSHAKE -> handshakes;
        case SYNACK -> synacks;
        case DROP -> drops;
        case RESET -> resets;
        case OTHER -> 0;
      };
    }
  }

  /**
   * How to run: the interval the caps apply to, the port to narrow the kernel's filters to (null: all),
   * how often to poll the buffers, and the buffer size per CPU (0: the kernel's default).
   */
  public record Settings(Duration interval, Integer port, Caps caps, Duration poll, int bufferKbPerCpu) {
    public static Settings of(Duration interval, Integer port) {
      return new Settings(interval, port, Caps.DEFAULT, Duration.ofMillis(100), 0);
    }
  }

  /** A concern the kernel's events cannot serve here, and why. */
  public record Failure(Concern concern, String reason) {}

  /**
   * Counts since the start. {@code skipped}: records past a cap, not decoded; {@code lost}: records the
   * kernel could not store; {@code unattributed}: events of no known listener (or of one whose port is
   * listened on in several namespaces: {@code ambiguous}); {@code listensUnresolved}: listen() calls whose
   * socket was gone before it could be read.
   */
  public record Stats(long records, long decoded, long skipped, long lost, long unattributed, long ambiguous,
      long listensUnresolved, long malformed) {}

  private final TraceInstance instance;
  private final ListenerEvents events;
  private final Settings settings;
  private final Consumer<TraceEvent> sink;
  private final ListenerAttribution attribution;
  private final ListenResolver resolver = new ListenResolver(Path.of("/proc"));
  private final List<Concern> running;
  private final List<Failure> failures;
  private final List<RawPipe> pipes = new ArrayList<>();
  private final Thread reader;
  private final Thread shutdownHook;
  private volatile boolean stopping;
  private final List<String> removedAtStart;

  // Reader thread only.
  private final Map<ListenerEvents.Kind, Long> usedThisInterval = new EnumMap<>(ListenerEvents.Kind.class);
  private long intervalStart = System.nanoTime();
  private final Map<Integer, long[]> pendingListens = new HashMap<>();
  private final Map<CountKey, Long> tally = new LinkedHashMap<>();
  private final Set<ListenerKey> resetKeysThisInterval = new HashSet<>();
  private final Set<ListenerKey> resetKeysCounted = new HashSet<>();
  static final int RESET_LINES = 50;
  static final int RESET_KEYS = 64;
  private final Output output = new Output();

  private final AtomicLong records = new AtomicLong();
  private final AtomicLong decoded = new AtomicLong();
  private final AtomicLong skipped = new AtomicLong();
  private final AtomicLong lostPages = new AtomicLong();
  private final AtomicLong unattributed = new AtomicLong();
  private final AtomicLong ambiguous = new AtomicLong();
  private final AtomicLong listensUnresolved = new AtomicLong();
  private final AtomicLong malformed = new AtomicLong();

  private record CountKey(TraceEvent.Counted what, ListenerKey key, String detail) {}

  private FtraceTier(TraceInstance instance, ListenerEvents events, Settings settings, Consumer<TraceEvent> sink,
      Supplier<Inventory> inventory, List<Concern> running, List<Failure> failures, List<String> removedAtStart) {
    this.instance = instance;
    this.events = events;
    this.settings = settings;
    this.sink = sink;
    this.attribution = new ListenerAttribution(inventory);
    this.running = running;
    this.failures = failures;
    this.removedAtStart = removedAtStart;
    this.reader = new Thread(this::readLoop, "ftrace-reader");
    this.reader.setDaemon(true);
    this.shutdownHook = new Thread(this::close, "ftrace-instance-removal");
  }

  /**
   * Removes instances of dead agents, makes this agent's instance, enables the events that this kernel has
   * and starts reading. Throws only when no instance can be made or no event enabled at all.
   */
  public static FtraceTier start(Settings settings, Consumer<TraceEvent> sink, Supplier<Inventory> inventory)
      throws IOException {
    Path tracefs = TraceInstance.locateTracefs()
        .orElseThrow(() -> new IOException("tracefs with instances is not mounted at /sys/kernel/tracing"));
    List<String> removed = TraceInstance.removeAbandoned(tracefs);
    TraceInstance instance = TraceInstance.create(tracefs);
    try {
      // The default clock ("local") is per CPU and not kept in step across CPUs: records of two CPUs could not be
      // put in order (a listener closed on one CPU and a new one born at the same address on another).
      instance.useClock("mono", "global");
      if (settings.bufferKbPerCpu() > 0) {
        java.nio.file.Files.writeString(instance.directory().resolve("buffer_size_kb"), settings.bufferKbPerCpu() + "\n");
      }
      ListenerEvents events = ListenerEvents.read(instance);
      List<Failure> failures = new ArrayList<>();
      events.unavailable().forEach(u -> failures.add(new Failure(u.concern(), u.reason())));
      Map<Concern, Boolean> ok = new LinkedHashMap<>();
      for (ListenerEvents.Subscription s : events.subscriptions(settings.port())) {
        try {
          instance.enable(s.system(), s.event(), s.filter());
          ok.merge(s.concern(), true, Boolean::logicalAnd);
        } catch (IOException e) {
          ok.put(s.concern(), false);
          failures.add(new Failure(s.concern(), e.getMessage()));
        }
      }
      List<Concern> running = ok.entrySet().stream().filter(Map.Entry::getValue).map(Map.Entry::getKey).toList();
      if (running.isEmpty()) {
        throw new IOException("no trace event could be enabled: "
            + failures.stream().map(Failure::reason).findFirst().orElse("none of them exists"));
      }
      FtraceTier tier = new FtraceTier(instance, events, settings, sink, inventory, running, List.copyOf(failures), removed);
      for (Path pipe : instance.rawPipes()) {
        tier.pipes.add(RawPipe.open(pipe));
      }
      Runtime.getRuntime().addShutdownHook(tier.shutdownHook);
      tier.reader.start();
      return tier;
    } catch (IOException | RuntimeException e) {
      instance.close();
      throw e;
    }
  }

  public List<Concern> running() {
    return running;
  }

  /** The trace events a concern runs from at this tier, for its status line (one word, as a program's name). */
  public static String source(Concern concern) {
    return switch (concern) {
      case LISTEN -> "ftrace:syscalls:sys_enter_listen,syscalls:sys_exit_listen";
      case HANDSHAKES -> "ftrace:sock:inet_sock_set_state";
      case SYNACK -> "ftrace:tcp:tcp_retransmit_synack";
      case DROPS -> "ftrace:skb:kfree_skb";
      case RESETS -> "ftrace:tcp:tcp_send_reset";
      default -> "ftrace";
    };
  }

  /** What a concern loses here against its BPF program (null: nothing), this kernel's events considered. */
  public String lostHere(Concern concern) {
    if (concern == Concern.RESETS && !events.resetsWithoutSocket()) {
      return "no reason in tcp_send_reset: before 6.10 resets sent without a socket (a closed port) are not traced";
    }
    return lost(concern);
  }

  /** What a concern loses at this tier against its BPF program (null: nothing), for its status line. */
  public static String lost(Concern concern) {
    return switch (concern) {
      case HANDSHAKES -> "no queue depth at each handshake, and the namespace found by address and port"
          + " (a port listened on in several namespaces is told apart only on loopback)";
      case DROPS -> "only drops at listeners born while the agent runs (known by their socket address)";
      case RESETS -> "a reset sent without a socket (a closed port) has no namespace in the event: placed, on"
          + " loopback, by the sending task's, when that task still runs as the record is read";
      default -> null;
    };
  }

  public List<Failure> failures() {
    return failures;
  }

  /** The tracefs instance's name, e.g. backlog-agent-1234-5678-9abc. */
  public String instanceName() {
    return instance.name();
  }

  /** Instances of dead agents this start removed. */
  public List<String> removedAtStart() {
    return removedAtStart;
  }

  public Stats stats() {
    return new Stats(records.get(), decoded.get(), skipped.get(), lostPages.get() + instance.overruns(),
        unattributed.get(), ambiguous.get(), listensUnresolved.get(), malformed.get());
  }

  // ---- the reader thread ----

  private void readLoop() {
    byte[] page = new byte[Math.max(4096, instance.pageSize())];
    int dataOffset = instance.pageDataOffset();
    long pollNanos = settings.poll().toNanos();
    while (true) {
      boolean last = stopping; // one more drain after the stop flag, so nothing read is left behind
      try {
        drain(page, dataOffset);
      } catch (IOException | RuntimeException e) {
        LOG.log(System.Logger.Level.WARNING, "ftrace reader: {0}", e.toString());
      }
      flush();
      if (last) {
        return;
      }
      try {
        Thread.sleep(pollNanos / 1_000_000, (int) (pollNanos % 1_000_000));
      } catch (InterruptedException e) {
        stopping = true;
      }
    }
  }

  /** A record copied out of its page, so that the records of every CPU can be taken in time order. */
  private record Copied(long timestamp, ByteBuffer bytes) {}

  /**
   * Reads every CPU's buffer, then handles the records in time order: a listener born on one CPU must be
   * known before its first handshake, handled on another, is attributed.
   */
  private void drain(byte[] page, int dataOffset) throws IOException {
    List<Copied> round = new ArrayList<>();
    for (RawPipe pipe : pipes) {
      for (int n = pipe.read(page); n > 0; n = pipe.read(page)) {
        RingBufferPage.Summary s = RingBufferPage.decode(page, n, dataOffset, (b, offset, length, time) -> {
          records.incrementAndGet();
          rollInterval();
          ListenerEvents.Kind kind = events.kind(b, offset);
          if (kind == ListenerEvents.Kind.OTHER) {
            return;
          }
          if (usedThisInterval.merge(kind, 1L, Long::sum) > settings.caps().of(kind)) {
            skipped.incrementAndGet();
            return;
          }
          byte[] copy = new byte[length];
          b.get(offset, copy);
          round.add(new Copied(time, ByteBuffer.wrap(copy).order(java.nio.ByteOrder.LITTLE_ENDIAN)));
        });
        if (s.missed() > 0) {
          lostPages.addAndGet(s.missed());
        }
      }
    }
    round.sort(java.util.Comparator.comparingLong(Copied::timestamp));
    for (Copied c : round) {
      record(c.bytes(), 0, c.bytes().capacity());
    }
  }

  private void record(ByteBuffer b, int offset, int length) {
    try {
      if (events.decode(b, offset, length, output)) {
        decoded.incrementAndGet();
      } else {
        malformed.incrementAndGet();
      }
    } catch (RuntimeException e) {
      if (malformed.incrementAndGet() <= 10) {
        LOG.log(System.Logger.Level.WARNING, "skipped an undecodable trace record: {0}", e.toString());
      }
    }
  }

  private void rollInterval() {
    long now = System.nanoTime();
    if (now - intervalStart >= settings.interval().toNanos()) {
      intervalStart = now;
      usedThisInterval.clear();
      resetKeysThisInterval.clear();
      resetKeysCounted.clear();
      taskNamespaces.clear();
    }
  }

  private final TaskNamespaces taskNamespaces = new TaskNamespaces();

  private long taskNetns(int tid) {
    return taskNamespaces.of(tid);
  }

  private void count(TraceEvent.Counted what, ListenerKey key, String detail) {
    tally.merge(new CountKey(what, key, detail), 1L, Long::sum);
  }

  private void flush() {
    if (tally.isEmpty()) {
      return;
    }
    for (Map.Entry<CountKey, Long> e : tally.entrySet()) {
      emit(new TraceEvent.ListenerCount(e.getKey().what(), e.getKey().key(), e.getKey().detail(), e.getValue()));
    }
    tally.clear();
  }

  private void emit(TraceEvent event) {
    try {
      sink.accept(event);
    } catch (RuntimeException e) {
      LOG.log(System.Logger.Level.WARNING, "the agent refused a trace event: {0}", e.toString());
    }
  }

  private ListenerKey attributed(ListenerAttribution.Result r) {
    switch (r.outcome()) {
      case AMBIGUOUS -> {
        ambiguous.incrementAndGet();
        unattributed.incrementAndGet();
        return null;
      }
      case UNKNOWN -> {
        unattributed.incrementAndGet();
        return null;
      }
      default -> {
        return r.key();
      }
    }
  }

  /** Attribution of decoded records to listeners, on the reader thread. */
  private final class Output implements ListenerEvents.Output {
    @Override
    public void listenRequested(int tid, int fd, long requestedBacklog) {
      if (pendingListens.size() > 4096) {
        pendingListens.clear(); // enters whose exits were never seen (threads that died in listen)
      }
      pendingListens.put(tid, new long[] {fd, requestedBacklog});
    }

    @Override
    public void listenReturned(int tid, long ret) {
      long[] call = pendingListens.remove(tid);
      if (call == null || ret != 0) {
        return;
      }
      try {
        TraceEvent.ListenCall resolved = resolver.resolve(tid, (int) call[0], call[1]);
        emit(resolved);
      } catch (ListenResolver.Unresolved e) {
        listensUnresolved.incrementAndGet();
        LOG.log(System.Logger.Level.DEBUG, "listen() not resolved: {0}", e.getMessage());
      }
    }

    @Override
    public void listenerBorn(int tid, long socket, int family, String address, int port) {
      long netns = dev.backlogagent.procfs.NetNamespaces.inodeOf(Path.of("/proc", Integer.toString(tid), "ns", "net"));
      if (netns > 0) {
        attribution.learn(socket, new ListenerKey(netns, AddressFamily.of(family), address, port));
      }
    }

    @Override
    public void listenerClosed(long socket) {
      attribution.forget(socket);
    }

    @Override
    public void handshake(int tid, int family, String address, int port) {
      ListenerKey key = attributed(attribution.byPortOrTask(AddressFamily.of(family), address, port, () -> taskNetns(tid)));
      if (key != null) {
        count(TraceEvent.Counted.HANDSHAKES, key, null);
      }
    }

    @Override
    public void synackRetransmit(long listener, int family, String address, int port) {
      ListenerAttribution.Result r = attribution.attribute(listener, AddressFamily.of(family), address, port);
      ListenerKey key = attributed(r);
      if (key != null) {
        if (r.outcome() == ListenerAttribution.Outcome.BY_PORT) {
          attribution.learn(listener, key);
        }
        count(TraceEvent.Counted.SYNACK_RETRANSMITS, key, null);
      }
    }

    @Override
    public void drop(long socket, long reason) {
      ListenerKey key = attribution.bySocket(socket);
      if (key != null) { // most drops with a socket are not at a listener: those were never asked for
        count(TraceEvent.Counted.DROPS, key, Long.toString(reason));
      }
    }

    @Override
    public void reset(int tid, long socket, int familyNumber, String address, int port, int state, long reason) {
      AddressFamily family = AddressFamily.of(familyNumber);
      ListenerAttribution.Result r = attribution.attribute(socket, family, address, port);
      if (r.outcome() == ListenerAttribution.Outcome.AMBIGUOUS) {
        r = attribution.byPortOrTask(family, address, port, () -> taskNetns(tid));
      } else if (r.outcome() == ListenerAttribution.Outcome.UNKNOWN) {
        r = attribution.byTask(family, address, port, () -> taskNetns(tid)); // a closed port: nobody listens
      }
      ListenerKey key = r.key();
      if (r.outcome() == ListenerAttribution.Outcome.AMBIGUOUS) {
        ambiguous.incrementAndGet();
      }
      // resets.bt's limits: one line per endpoint and RESET_LINES in all per interval, and counts for
      // RESET_KEYS endpoints, the rest under their namespace's 0.0.0.0:0. Without a socket's fields to read,
      // this tier cannot tell a server's FIN answered at a client's freed port from a refusal: a storm of
      // aborting clients draws one from a new ephemeral port per connection (330 lines a second before).
      if (!resetKeysThisInterval.contains(key) && resetKeysThisInterval.size() < RESET_LINES) {
        resetKeysThisInterval.add(key);
        emit(new TraceEvent.ResetSent(key, state, reason));
      } else {
        ListenerKey counted = key;
        if (key != null && !resetKeysCounted.contains(key)) {
          if (resetKeysCounted.size() < RESET_KEYS) {
            resetKeysCounted.add(key);
          } else {
            counted = new ListenerKey(key.netns(), AddressFamily.IPV4, "0.0.0.0", 0);
          }
        }
        count(TraceEvent.Counted.RESETS_SUPPRESSED, counted, state + "," + reason);
      }
    }
  }

  /** Stops reading (after a last drain), disables the events and removes the instance; idempotent. */
  @Override
  public void close() {
    stopping = true;
    reader.interrupt();
    try {
      reader.join(5_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    synchronized (pipes) {
      pipes.forEach(RawPipe::close);
      pipes.clear();
    }
    instance.close();
    try {
      Runtime.getRuntime().removeShutdownHook(shutdownHook);
    } catch (IllegalStateException e) {
      // shutting down: the hook removes the instance (close is idempotent)
    }
  }
}
