package dev.backlogagent.listener;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonUnwrapped;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.backlogagent.decode.AddressFamily;
import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.decode.TraceEvent;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Remembers the backlog each listening socket asked for, from the listen() calls BPF saw. The kernel keeps
 * only the clamped value, so this is the only place the request survives — and since a server calls
 * listen() once, at start, the book is kept in a state file: the agent that saw the call writes it, and a
 * later {@code backlog-agent listeners} reads it.
 *
 * <p>Keyed by the socket (its namespace and inode), not by the port: a server that stops and another that
 * listens on the same port later are two sockets, and the second must not inherit the first's request.
 * A listen() event names a port and a process, not a socket, so it waits as a pending call until an
 * inventory shows the socket on that port held by that process, with the backlog the call granted; then
 * it is kept under the socket's inode. Entries whose socket is gone are pruned by the next inventory that
 * covers them. Bounded, so a host that opens listeners forever cannot grow it without end.
 */
public final class RequestedBacklogBook implements RequestedBacklogs {
  private static final int MAX_ENTRIES = 65_536;
  private static final int MAX_PENDING = 4_096;
  /** The state file's format; 1 (a bare list keyed by namespace, address and port) is ignored. */
  static final int FORMAT = 2;
  private static final System.Logger LOG = System.getLogger(RequestedBacklogBook.class.getName());

  /**
   * One socket's listen() call as kept in the state file.
   *
   * @param listener where the call listened (flat in the state file: netns, family, address, port)
   */
  public record Entry(ListenerKey listener, long socketInode, int pid, String comm, long requested,
      long backlog) {
    @JsonCreator
    static Entry read(@JsonProperty("netns") long netns, @JsonProperty("family") AddressFamily family,
        @JsonProperty("address") String address, @JsonProperty("port") int port,
        @JsonProperty("socketInode") long socketInode, @JsonProperty("pid") int pid, @JsonProperty("comm") String comm,
        @JsonProperty("requested") long requested, @JsonProperty("backlog") long backlog) {
      return new Entry(stored(netns, family, address, port), socketInode, pid, comm, requested, backlog);
    }

    // On the accessor, not the component: Jackson cannot read an unwrapped creator parameter (read() does).
    @Override
    @JsonUnwrapped
    public ListenerKey listener() {
      return listener;
    }

    ListenerSocket socket() {
      return new ListenerSocket(listener.netns(), socketInode);
    }
  }

  /** A listen() call not yet tied to its socket. */
  public record Pending(ListenerKey listener, int pid, String comm, long requested, long backlog,
      long seenEpochMillis) {
    @JsonCreator
    static Pending read(@JsonProperty("netns") long netns, @JsonProperty("family") AddressFamily family,
        @JsonProperty("address") String address, @JsonProperty("port") int port, @JsonProperty("pid") int pid,
        @JsonProperty("comm") String comm, @JsonProperty("requested") long requested, @JsonProperty("backlog") long backlog,
        @JsonProperty("seenEpochMillis") long seenEpochMillis) {
      return new Pending(stored(netns, family, address, port), pid, comm, requested, backlog, seenEpochMillis);
    }

    @Override
    @JsonUnwrapped
    public ListenerKey listener() {
      return listener;
    }
  }

  /**
   * A listener key as the state file keeps it. Files written before the family was kept lack it; inet_ntop
   * writes every IPv6 address, and no IPv4 one, with a colon.
   */
  private static ListenerKey stored(long netns, AddressFamily family, String address, int port) {
    AddressFamily known = family != null ? family : address != null && address.contains(":") ? AddressFamily.IPV6
        : AddressFamily.IPV4;
    return new ListenerKey(netns, known, address, port);
  }

  /** The state file. */
  record StateFile(int format, List<Entry> sockets, List<Pending> pending) {}

  private final ConcurrentHashMap<ListenerSocket, Entry> entries = new ConcurrentHashMap<>();
  private final List<Pending> pending = new ArrayList<>();
  // Fields a later agent adds are ignored, so that going back to this version keeps the book instead of
  // refusing the whole file (this version added the entries' family).
  private final ObjectMapper mapper = new ObjectMapper()
      .disable(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);
  private volatile boolean changed;
  /**
   * Whether the pids BPF reports (the initial pid namespace's) are the pids this agent's /proc shows. Not so
   * when the agent runs in a pid namespace of its own (a container; systemd booted in namespaces): then a
   * call is tied to its socket by namespace, address, port and granted backlog alone.
   */
  private final boolean pidsComparable = inInitialPidNamespace();

  // PROC_PID_INIT_INO: the inode of the initial pid namespace, fixed by the kernel.
  private static final long INITIAL_PID_NAMESPACE = 0xEFFFFFFCL;

  private static boolean inInitialPidNamespace() {
    try {
      Object inode = Files.getAttribute(Path.of("/proc/self/ns/pid"), "unix:ino");
      return ((Number) inode).longValue() == INITIAL_PID_NAMESPACE;
    } catch (IOException | UnsupportedOperationException | IllegalArgumentException | SecurityException e) {
      return true; // cannot tell: keep the stricter match
    }
  }

  public void record(TraceEvent.ListenCall call) {
    synchronized (pending) {
      if (pending.size() >= MAX_PENDING) {
        pending.remove(0); // the oldest: its socket was never seen
      }
      // A newer call for the same port and process replaces an older one (listen() again to resize).
      pending.removeIf(p -> p.listener().equals(call.key()) && p.pid() == call.pid());
      pending.add(new Pending(call.key(), call.pid(), call.comm(), call.requestedBacklog(), call.backlog(),
          System.currentTimeMillis()));
    }
    changed = true;
  }

  @Override
  public Long requested(SocketSeen socket) {
    ListenerSocket key = socket.socket();
    Pending match = null;
    synchronized (pending) {
      // The newest call for this port by a holder of this socket, granting its backlog, is its call.
      for (int i = pending.size() - 1; i >= 0; i--) {
        Pending p = pending.get(i);
        if (p.listener().equals(socket.listener()) && p.backlog() == socket.backlog()
            && (!pidsComparable || socket.holders().contains(p.pid()))) {
          match = p;
          pending.remove(i);
          break;
        }
      }
    }
    if (match != null) {
      if (entries.size() >= MAX_ENTRIES) {
        entries.clear(); // rare; the next listen() calls refill it
      }
      entries.put(key, new Entry(match.listener(), socket.inode(), match.pid(), match.comm(), match.requested(),
          match.backlog()));
      changed = true;
    }
    Entry e = entries.get(key);
    return e == null || e.backlog() != socket.backlog() ? null : e.requested();
  }

  /**
   * Forgets the sockets an inventory shows are gone: entries of namespaces it read, on ports it covered,
   * whose socket it does not list; entries of namespaces that no longer exist (when it read them all);
   * and pending calls seen before it started whose port it covered — their socket was closed before any
   * inventory saw it.
   */
  public void prune(Inventory inventory, InventoryReader.Scope scope, Instant readStarted) {
    Set<Long> namespaces = new HashSet<>();
    inventory.namespaces().forEach(ns -> namespaces.add(ns.netns()));
    Set<ListenerSocket> alive = new HashSet<>();
    inventory.listeners().forEach(l -> alive.add(l.socket()));
    boolean everyNamespace = scope.netns() == null && inventory.skipped().isEmpty();
    boolean removed = false;
    for (Iterator<Map.Entry<ListenerSocket, Entry>> it = entries.entrySet().iterator(); it.hasNext(); ) {
      Map.Entry<ListenerSocket, Entry> e = it.next();
      Entry entry = e.getValue();
      boolean read = namespaces.contains(entry.listener().netns()) && scope.coversPort(entry.listener().port());
      boolean namespaceGone = everyNamespace && !namespaces.contains(entry.listener().netns());
      if ((read && !alive.contains(e.getKey())) || namespaceGone) {
        it.remove();
        removed = true;
      }
    }
    synchronized (pending) {
      removed |= pending.removeIf(p -> p.seenEpochMillis() < readStarted.toEpochMilli()
          && ((namespaces.contains(p.listener().netns()) && scope.coversPort(p.listener().port()))
              || (everyNamespace && !namespaces.contains(p.listener().netns()))));
    }
    if (removed) {
      changed = true;
    }
  }

  /** The sockets whose request is known (a copy), for tests and the state file. */
  public List<Entry> entries() {
    return List.copyOf(entries.values());
  }

  /**
   * Reads a state file; a missing one is an empty book, an unreadable one or one in the old format (keyed
   * by port) is logged in one line and ignored — it is rewritten at the next save.
   */
  public static RequestedBacklogBook load(Path file) {
    RequestedBacklogBook book = new RequestedBacklogBook();
    if (file == null || !Files.isReadable(file)) {
      return book;
    }
    try {
      if (Files.size(file) == 0) {
        return book; // created empty (a test's temporary file, an interrupted first save)
      }
      JsonNode tree = book.mapper.readTree(file.toFile());
      if (tree == null || !tree.isObject() || tree.path("format").asInt() != FORMAT) {
        LOG.log(System.Logger.Level.WARNING,
            "ignoring state file {0}: not format " + FORMAT + " (an older agent keyed requested backlogs by port); it is rewritten at the next save",
            file);
        return book;
      }
      StateFile state = book.mapper.convertValue(tree, new TypeReference<StateFile>() {});
      for (Entry e : state.sockets() == null ? List.<Entry>of() : state.sockets()) {
        book.entries.put(e.socket(), e);
      }
      if (state.pending() != null) {
        book.pending.addAll(state.pending());
      }
    } catch (IOException | IllegalArgumentException e) {
      LOG.log(System.Logger.Level.WARNING, "ignoring unreadable state file {0}: {1}", file, e.getMessage());
    }
    return book;
  }

  /** Writes the state file when something changed since the last save (atomically: write, then rename). */
  public void saveIfChanged(Path file) {
    if (file == null || !changed) {
      return;
    }
    changed = false;
    try {
      Files.createDirectories(file.getParent());
      Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
      List<Pending> waiting;
      synchronized (pending) {
        waiting = List.copyOf(pending);
      }
      mapper.writeValue(tmp.toFile(), new StateFile(FORMAT, new ArrayList<>(entries.values()), waiting));
      Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      changed = true;
      LOG.log(System.Logger.Level.WARNING, "cannot write state file {0}: {1}", file, e.getMessage());
    }
  }
}
