package dev.backlogagent.ftrace;

import dev.backlogagent.decode.AddressFamily;
import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.listener.Inventory;
import dev.backlogagent.listener.Listener;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * Finds the network namespace of a trace event, which tracefs events do not carry (BPF reads
 * {@code skc_net} from the socket; ftrace cannot follow pointers). Two ways, best first:
 * <ol>
 *   <li>by the listener's socket address ({@code skaddr}/{@code rx_sk}): learnt when the listener is born
 *       (its {@code CLOSE -> LISTEN} transition runs in the process calling listen(), whose
 *       {@code /proc/PID/ns/net} names the namespace) — exact;
 *   <li>by local address and port: the namespaces whose listeners (in the latest inventory, or born since)
 *       would take that address and port. One namespace: attributed. Several (the same port listened on in
 *       two namespaces): ambiguous, and the event is counted as such, never guessed.
 * </ol>
 * Used by the tier's single reader thread only.
 */
public final class ListenerAttribution {
  private static final int MAX_SOCKETS = 65_536;

  /** How an event was attributed. */
  public enum Outcome { EXACT, BY_PORT, BY_TASK, AMBIGUOUS, UNKNOWN }

  public record Result(ListenerKey key, Outcome outcome) {}

  private final Supplier<Inventory> inventory;
  private final Map<Long, ListenerKey> bySocket =
      new LinkedHashMap<>(1024, 0.75f, false) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Long, ListenerKey> eldest) {
          return size() > MAX_SOCKETS;
        }
      };
  private Inventory indexed;
  private Map<Integer, List<Listener>> byPort = Map.of();

  public ListenerAttribution(Supplier<Inventory> inventory) {
    this.inventory = inventory;
  }

  /** A listener socket was born (or seen at a SYN-ACK retransmit, attributed by port) at {@code socket}. */
  public void learn(long socket, ListenerKey key) {
    bySocket.put(socket, key);
  }

  public void forget(long socket) {
    bySocket.remove(socket);
  }

  public ListenerKey bySocket(long socket) {
    return bySocket.get(socket);
  }

  int knownSockets() {
    return bySocket.size();
  }

  /** The listener a connection's local address and port lead to, with the socket tried first when known. */
  public Result attribute(long socket, AddressFamily family, String address, int port) {
    ListenerKey known = socket == 0 ? null : bySocket.get(socket);
    if (known != null) {
      return new Result(known, Outcome.EXACT);
    }
    return byPort(family, address, port);
  }

  /**
   * As {@link #byPort(AddressFamily, String, int)}, and when several namespaces could take a connection to a loopback
   * address, the namespace of the task the event ran in: loopback never crosses namespaces, and its
   * receive path runs in the sending task's softirq, so that task (a user task, not ksoftirqd) is in the
   * connection's namespace. {@code taskNetns} gives it (-1 for a kernel thread or a task gone).
   */
  public Result byPortOrTask(AddressFamily family, String address, int port, java.util.function.LongSupplier taskNetns) {
    Result r = byPort(family, address, port);
    if (r.outcome() != Outcome.AMBIGUOUS || !isLoopback(address)) {
      return r;
    }
    long netns = taskNetns.getAsLong();
    if (netns > 0 && candidates(family, address, port).contains(netns)) {
      return new Result(new ListenerKey(netns, family, address, port), Outcome.BY_TASK);
    }
    return r;
  }

  /**
   * For an event that need not be at a listener (a reset from a closed port): on loopback, the namespace of the
   * task it ran in, whether or not anything listens there.
   */
  public Result byTask(AddressFamily family, String address, int port, java.util.function.LongSupplier taskNetns) {
    if (isLoopback(address)) {
      long netns = taskNetns.getAsLong();
      if (netns > 0) {
        return new Result(new ListenerKey(netns, family, address, port), Outcome.BY_TASK);
      }
    }
    return new Result(new ListenerKey(0, family, address, port), Outcome.UNKNOWN);
  }

  static boolean isLoopback(String address) {
    return address.startsWith("127.") || address.equals("::1") || address.startsWith("::ffff:127.");
  }

  /** The namespaces whose listeners would take a connection to {@code address:port}. */
  public Result byPort(AddressFamily family, String address, int port) {
    Set<Long> namespaces = candidates(family, address, port);
    if (namespaces.size() == 1) {
      return new Result(new ListenerKey(namespaces.iterator().next(), family, address, port), Outcome.BY_PORT);
    }
    return new Result(new ListenerKey(0, family, address, port),
        namespaces.isEmpty() ? Outcome.UNKNOWN : Outcome.AMBIGUOUS);
  }

  private Set<Long> candidates(AddressFamily family, String address, int port) {
    refreshIndex();
    Set<Long> namespaces = new HashSet<>();
    for (Listener l : byPort.getOrDefault(port, List.of())) {
      if (takes(l.key().address(), l.key().family(), family, address)) {
        namespaces.add(l.key().netns());
      }
    }
    for (ListenerKey k : bySocket.values()) {
      if (k.port() == port && takes(k.address(), k.family(), family, address)) {
        namespaces.add(k.netns());
      }
    }
    return namespaces;
  }

  // Whether a listener bound to `bound` (of `boundFamily`) takes a connection to `address` of `family`.
  static boolean takes(String bound, AddressFamily boundFamily, AddressFamily family, String address) {
    if (bound.equals(address)) {
      return true;
    }
    if (bound.equals("::")) {
      return true; // a dual-stack wildcard takes IPv4 (as ::ffff:a.b.c.d) and IPv6
    }
    if (bound.equals("0.0.0.0")) {
      return family == AddressFamily.IPV4 || address.startsWith("::ffff:");
    }
    return address.equals("::ffff:" + bound) || bound.equals("::ffff:" + address);
  }

  private void refreshIndex() {
    Inventory now = inventory.get();
    if (now == null || now == indexed) {
      return;
    }
    Map<Integer, List<Listener>> index = new HashMap<>();
    for (Listener l : now.listeners()) {
      index.computeIfAbsent(l.key().port(), p -> new java.util.ArrayList<>()).add(l);
    }
    byPort = index;
    indexed = now;
  }
}
