package dev.backlogagent.ftrace;

import dev.backlogagent.bpf.Concern;
import dev.backlogagent.kernel.TracepointSymbols;
import dev.backlogagent.netlink.AddressText;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.StringJoiner;

/**
 * The trace events the ftrace tier enables, the filters that keep only what concerns listeners inside the
 * kernel, and the decoding of their records — every field by the name and offset the running kernel's
 * {@code format} file gives, every state and drop reason by the name its {@code __print_symbolic} gives.
 */
final class ListenerEvents {

  /** What a record is, for the per-interval caps. */
  enum Kind { LISTEN, HANDSHAKE, SYNACK, DROP, RESET, OTHER }

  /** One event to enable, with its filter (null: none), for a concern. */
  record Subscription(Concern concern, String system, String event, String filter) {}

  /** A concern this kernel's events cannot serve, and why. */
  record Unavailable(Concern concern, String reason) {}

  /** What the decoded records say; attribution to listeners happens behind it. */
  interface Output {
    void listenRequested(int tid, int fd, long requestedBacklog);

    void listenReturned(int tid, long ret);

    /** A socket entered LISTEN: {@code socket} is the listener's address, {@code tid} the caller of listen(). */
    void listenerBorn(int tid, long socket, int family, String address, int port);

    void listenerClosed(long socket);

    /** A connection's child socket was created from a listener at the third ACK, in task {@code tid}'s softirq. */
    void handshake(int tid, int family, String address, int port);

    void synackRetransmit(long listener, int family, String address, int port);

    /** A packet freed with {@code reason} at socket {@code socket} (maybe a listener). */
    void drop(long socket, long reason);

    void reset(int tid, long socket, int family, String address, int port, int state, long reason);
  }

  // The drop reasons that a listener itself sees (recorded on 6.18 by drops.bt: see its header); the
  // rest are dropped in the kernel by the filter.
  private static final List<String> LISTENER_DROP_REASONS = List.of("TCP_LISTEN_OVERFLOW", "NO_SOCKET",
      "TCP_INVALID_SYN", "SOCKET_BACKLOG", "TCP_RESET", "NOT_SPECIFIED", "TCP_FLAGS", "PROTO_MEM");

  private final EventFormat enterListen;
  private final EventFormat exitListen;
  private final EventFormat setState;
  private final EventFormat synack;
  private final EventFormat kfreeSkb;
  private final EventFormat sendReset;
  private final long stateListen;
  private final long stateSynRecv;
  private final long stateNewSynRecv;
  private final Map<Integer, EventFormat> byId = new LinkedHashMap<>();
  private final List<String> problems = new ArrayList<>();

  ListenerEvents(Map<String, String> formats) {
    enterListen = parse(formats, "syscalls", "sys_enter_listen");
    exitListen = parse(formats, "syscalls", "sys_exit_listen");
    setState = parse(formats, "sock", "inet_sock_set_state");
    synack = parse(formats, "tcp", "tcp_retransmit_synack");
    kfreeSkb = parse(formats, "skb", "kfree_skb");
    sendReset = parse(formats, "tcp", "tcp_send_reset");
    TracepointSymbols states = setState == null ? TracepointSymbols.none() : setState.symbols("newstate");
    stateListen = known(states.number("TCP_LISTEN"), 10);
    stateSynRecv = known(states.number("TCP_SYN_RECV"), 3);
    stateNewSynRecv = known(states.number("TCP_NEW_SYN_RECV"), 12);
  }

  /** The events of the running kernel, read from the instance's tracefs. */
  static ListenerEvents read(TraceInstance instance) throws IOException {
    Map<String, String> formats = new LinkedHashMap<>();
    for (String[] e : new String[][] {{"syscalls", "sys_enter_listen"}, {"syscalls", "sys_exit_listen"},
        {"sock", "inet_sock_set_state"}, {"tcp", "tcp_retransmit_synack"}, {"skb", "kfree_skb"},
        {"tcp", "tcp_send_reset"}}) {
      Optional<String> text = instance.format(e[0], e[1]);
      text.ifPresent(t -> formats.put(e[0] + "/" + e[1], t));
    }
    return new ListenerEvents(formats);
  }

  // Only when the format does not name the state (it always does since 4.16).
  private static long known(long number, long fallback) {
    return number >= 0 ? number : fallback;
  }

  private EventFormat parse(Map<String, String> formats, String system, String event) {
    String text = formats.get(system + "/" + event);
    if (text == null) {
      return null;
    }
    try {
      EventFormat f = EventFormat.parse(system, event, text);
      byId.put(f.id(), f);
      return f;
    } catch (EventFormat.FormatException e) {
      problems.add(e.getMessage());
      return null;
    }
  }

  /** Which events to enable and with which filters; {@code port}, when given, narrows them in the kernel. */
  List<Subscription> subscriptions(Integer port) {
    List<Subscription> out = new ArrayList<>();
    if (enterListen != null && exitListen != null && enterListen.has("fd") && enterListen.has("backlog")
        && exitListen.has("ret")) {
      out.add(new Subscription(Concern.LISTEN, "syscalls", "sys_enter_listen", null));
      out.add(new Subscription(Concern.LISTEN, "syscalls", "sys_exit_listen", "ret == 0"));
    }
    if (setState != null && setState.has("oldstate") && setState.has("newstate") && setState.has("sport")) {
      StringBuilder filter = new StringBuilder();
      if (setState.has("protocol")) {
        filter.append("protocol == 6 && ");
      }
      filter.append("(newstate == ").append(stateListen).append(" || oldstate == ").append(stateListen)
          .append(" || oldstate == ").append(stateNewSynRecv).append(")");
      if (port != null) {
        filter.append(" && sport == ").append(port);
      }
      out.add(new Subscription(Concern.HANDSHAKES, "sock", "inet_sock_set_state", filter.toString()));
    }
    if (synack != null && synack.has("skaddr") && synack.has("sport")) {
      out.add(new Subscription(Concern.SYNACK, "tcp", "tcp_retransmit_synack", port == null ? null : "sport == " + port));
    }
    if (kfreeSkb != null && kfreeSkb.has("rx_sk") && kfreeSkb.has("reason")) {
      TracepointSymbols reasons = kfreeSkb.symbols("reason");
      StringJoiner any = new StringJoiner(" || ", "rx_sk != 0 && (", ")");
      for (String name : LISTENER_DROP_REASONS) {
        long n = reasons.number(name);
        if (n >= 0) {
          any.add("reason == " + n);
        }
      }
      out.add(new Subscription(Concern.DROPS, "skb", "kfree_skb", any.toString()));
    }
    if (sendReset != null && sendReset.has("state") && sendReset.has("skaddr")) {
      out.add(new Subscription(Concern.RESETS, "tcp", "tcp_send_reset",
          "state == 0 || state == " + stateListen + " || state == " + stateNewSynRecv));
    }
    return out;
  }

  /** Whether this kernel traces resets sent without a socket (6.10+, when tcp_send_reset got its reason). */
  boolean resetsWithoutSocket() {
    return sendReset != null && sendReset.has("reason");
  }

  /** Concerns this kernel's events cannot serve. */
  List<Unavailable> unavailable() {
    List<Unavailable> out = new ArrayList<>();
    if (enterListen == null || exitListen == null) {
      out.add(new Unavailable(Concern.LISTEN, "no syscalls:sys_enter_listen/sys_exit_listen (CONFIG_FTRACE_SYSCALLS)"));
    }
    if (setState == null) {
      out.add(new Unavailable(Concern.HANDSHAKES, "no sock:inet_sock_set_state"));
    }
    if (synack == null) {
      out.add(new Unavailable(Concern.SYNACK, "no tcp:tcp_retransmit_synack"));
    }
    if (kfreeSkb == null || !kfreeSkb.has("reason")) {
      out.add(new Unavailable(Concern.DROPS, "no skb:kfree_skb with a reason (5.17+)"));
    } else if (!kfreeSkb.has("rx_sk")) {
      out.add(new Unavailable(Concern.DROPS,
          "skb:kfree_skb has no rx_sk before 6.11: a drop cannot be tied to its listener without BPF"));
    }
    if (sendReset == null) {
      out.add(new Unavailable(Concern.RESETS, "no tcp:tcp_send_reset"));
    }
    problems.forEach(p -> out.add(new Unavailable(Concern.LISTEN, p)));
    return out;
  }

  /** The kind of the record at {@code base}, from its common_type. */
  Kind kind(ByteBuffer b, int base) {
    EventFormat f = byId.get(Short.toUnsignedInt(b.getShort(base)));
    if (f == null) {
      return Kind.OTHER;
    }
    if (f == enterListen || f == exitListen) {
      return Kind.LISTEN;
    }
    if (f == setState) {
      return Kind.HANDSHAKE;
    }
    if (f == synack) {
      return Kind.SYNACK;
    }
    return f == kfreeSkb ? Kind.DROP : Kind.RESET;
  }

  /** Decodes one record; returns false when it is shorter than its format says (counted by the caller). */
  boolean decode(ByteBuffer b, int base, int length, Output out) {
    EventFormat f = byId.get(Short.toUnsignedInt(b.getShort(base)));
    if (f == null || length < f.minimumLength()) {
      return false;
    }
    int tid = (int) f.integer(b, base, "common_pid");
    if (f == enterListen) {
      out.listenRequested(tid, (int) f.integer(b, base, "fd"), (int) f.integer(b, base, "backlog"));
    } else if (f == exitListen) {
      out.listenReturned(tid, f.integer(b, base, "ret"));
    } else if (f == setState) {
      long oldstate = f.integer(b, base, "oldstate");
      long newstate = f.integer(b, base, "newstate");
      Endpoint local = inetSource(f, b, base);
      if (newstate == stateListen) {
        out.listenerBorn(tid, f.integer(b, base, "skaddr"), local.family(), local.address(), local.port());
      } else if (oldstate == stateListen && newstate == stateSynRecv || oldstate == stateNewSynRecv && newstate == stateSynRecv) {
        out.handshake(tid, local.family(), local.address(), local.port());
      } else if (oldstate == stateListen) {
        out.listenerClosed(f.integer(b, base, "skaddr"));
      }
    } else if (f == synack) {
      Endpoint local = inetSource(f, b, base);
      out.synackRetransmit(f.integer(b, base, "skaddr"), local.family(), local.address(), local.port());
    } else if (f == kfreeSkb) {
      out.drop(f.integer(b, base, "rx_sk"), f.integer(b, base, "reason"));
    } else if (f == sendReset) {
      Endpoint local = f.has("sport") ? inetSource(f, b, base) : sockaddr(f.bytes(b, base, "saddr"));
      long reason = f.has("reason") ? f.integer(b, base, "reason") : 0;
      out.reset(tid, f.integer(b, base, "skaddr"), local.family(), local.address(), local.port(),
          (int) f.integer(b, base, "state"), reason);
    }
    return true;
  }

  record Endpoint(int family, String address, int port) {}

  // sport/saddr/saddr_v6 (and family since 5.x on most events): the tracepoint stores an IPv4 socket's
  // address in saddr and, v4-mapped, in saddr_v6.
  private static Endpoint inetSource(EventFormat f, ByteBuffer b, int base) {
    int port = (int) f.integer(b, base, "sport");
    byte[] v6 = f.has("saddr_v6") ? f.bytes(b, base, "saddr_v6") : null;
    int family;
    if (f.has("family")) {
      family = (int) f.integer(b, base, "family");
    } else {
      family = v6 == null || isV4Mapped(v6) ? 2 : 10;
    }
    if (family == 10 && v6 != null) {
      return new Endpoint(10, AddressText.of(v6), port);
    }
    byte[] v4 = f.bytes(b, base, "saddr");
    return new Endpoint(2, AddressText.of(v4.length == 4 ? v4 : java.util.Arrays.copyOf(v4, 4)), port);
  }

  private static boolean isV4Mapped(byte[] a) {
    for (int i = 0; i < 10; i++) {
      if (a[i] != 0) {
        return false;
      }
    }
    return (a[10] & 0xff) == 0xff && (a[11] & 0xff) == 0xff;
  }

  // A struct sockaddr_in / sockaddr_in6 as tcp_send_reset stores it (6.12+): family in host order, port in
  // network order.
  static Endpoint sockaddr(byte[] s) {
    int family = (s[0] & 0xff) | (s[1] & 0xff) << 8;
    int port = (s[2] & 0xff) << 8 | (s[3] & 0xff);
    if (family == 10 && s.length >= 24) {
      return new Endpoint(10, AddressText.of(java.util.Arrays.copyOfRange(s, 8, 24)), port);
    }
    return new Endpoint(2, AddressText.of(java.util.Arrays.copyOfRange(s, 4, 8)), port);
  }
}
