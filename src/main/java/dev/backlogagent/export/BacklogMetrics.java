package dev.backlogagent.export;

import dev.backlogagent.bpf.ConcernStatus;
import dev.backlogagent.decode.TcpState;
import dev.backlogagent.listener.ListenerFlag;
import dev.backlogagent.listener.NetNamespace;
import dev.backlogagent.listener.Trouble;
import dev.backlogagent.procfs.ListenCounters;
import dev.backlogagent.procfs.NamespaceSysctls;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.common.AttributesBuilder;
import io.opentelemetry.api.metrics.Meter;
import io.opentelemetry.api.metrics.ObservableLongMeasurement;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.function.ToLongFunction;

/**
 * The metrics the daemon exports through instruments (README.md lists them with their Prometheus names):
 * gauges and counters observed from the {@link ListenerBook} and the agent's status when an exporter
 * collects. The two histograms are not instruments: {@link ListenerHistograms} hands the book's to the SDK.
 */
public final class BacklogMetrics {
  static final AttributeKey<String> NETNS_NAME = AttributeKey.stringKey("netns.name");
  static final AttributeKey<String> STATE_FROM = AttributeKey.stringKey("tcp.state.from");
  static final AttributeKey<String> STATE_TO = AttributeKey.stringKey("tcp.state.to");
  static final AttributeKey<String> TIER = AttributeKey.stringKey("backlog_agent.tier");
  static final AttributeKey<String> SIGNAL = AttributeKey.stringKey("backlog_agent.signal");
  static final AttributeKey<String> FLAG = AttributeKey.stringKey("tcp.listen.flag");
  static final AttributeKey<String> KIND = AttributeKey.stringKey("tcp.listen.trouble.kind");
  static final AttributeKey<String> CONCERN = AttributeKey.stringKey("backlog_agent.concern");
  static final AttributeKey<String> CONCERN_PROGRAM = AttributeKey.stringKey("backlog_agent.concern.program");
  static final AttributeKey<String> CONCERN_STATE = AttributeKey.stringKey("backlog_agent.concern.state");

  private final List<AutoCloseable> callbacks = new ArrayList<>();

  public BacklogMetrics(Meter meter, ListenerBook book, Supplier<AgentStatus> status) {
    // Per listener, now.
    listenerGauge(meter, book, "tcp.listen.queue.size", "The number of connections waiting in the listener's accept queue.",
        ListenerBook.Row::queue);
    listenerGauge(meter, book, "tcp.listen.queue.limit",
        "The listener's effective backlog: the accept-queue length beyond which connections are dropped.", ListenerBook.Row::backlog);
    callbacks.add(meter.gaugeBuilder("tcp.listen.backlog.requested").ofLongs().setUnit("{connection}")
        .setDescription("The backlog the application passed to listen(), before net.core.somaxconn clamped it; only known when the agent saw the call.")
        .buildWithCallback(m -> {
          for (ListenerBook.Row r : book.rows()) {
            if (r.requestedBacklog() != null) {
              m.record(r.requestedBacklog(), r.identity().attributes());
            }
          }
        }));
    // The finding, so that an alert can say why: every flag and every kind, 0 or 1, per listener.
    callbacks.add(meter.gaugeBuilder("tcp.listen.flag").ofLongs().setUnit("1")
        .setDescription("1 when the listener has the flag (full, truncated, at_somaxconn, dropping: see README), else 0.")
        .buildWithCallback(m -> {
          for (ListenerBook.Row r : book.rows()) {
            for (ListenerFlag f : ListenerFlag.values()) {
              m.record(r.flags().contains(f) ? 1 : 0, r.identity().attributes().toBuilder().put(FLAG, f.label()).build());
            }
          }
        }));
    callbacks.add(meter.gaugeBuilder("tcp.listen.trouble").ofLongs().setUnit("1")
        .setDescription("1 when the last interval's diagnosis found this kind of trouble at the listener (docs/diagnosis.md), else 0.")
        .buildWithCallback(m -> {
          for (ListenerBook.Row r : book.rows()) {
            for (Trouble t : Trouble.values()) {
              m.record(r.troubles().contains(t) ? 1 : 0, r.identity().attributes().toBuilder().put(KIND, t.kind()).build());
            }
          }
        }));
    callbacks.add(meter.gaugeBuilder("tcp.listen.accept.stalled").ofLongs().setUnit("1")
        .setDescription("1 when the last interval found the accept queue full and no accept() at all: the application is stuck, not slow.")
        .buildWithCallback(m -> book.rows().forEach(r -> m.record(r.stalled() ? 1 : 0, r.identity().attributes()))));

    // Per listener, since admitted.
    listenerCounter(meter, book, "tcp.listen.drops", "{packet}",
        "Packets dropped at the listener since the agent exported it: the rises of its sk_drops (ss's d), SYNs and third ACKs lost at the door.",
        ListenerBook.Row::drops);
    listenerCounter(meter, book, "tcp.listen.overflows", "{packet}",
        "Of those, the SYNs and third ACKs the diagnosis found dropped for a full accept queue.", ListenerBook.Row::overflows);
    listenerCounter(meter, book, "tcp.listen.synack.retransmits", "{segment}",
        "SYN-ACKs the listener retransmitted because the final ACK did not come.", ListenerBook.Row::synackRetransmits);
    listenerCounter(meter, book, "tcp.listen.handshakes", "{connection}",
        "Handshakes completed at the listener (connections put on its accept queue).", ListenerBook.Row::handshakes);

    // Per namespace.
    namespaceCounter(meter, book, "tcp.ext.listen_overflows", "{packet}",
        "TcpExt ListenOverflows: SYNs or final ACKs that met a full accept queue.", ListenCounters::listenOverflows);
    namespaceCounter(meter, book, "tcp.ext.listen_drops", "{packet}",
        "TcpExt ListenDrops: every packet dropped at a listener, overflows included.", ListenCounters::listenDrops);
    namespaceCounter(meter, book, "tcp.ext.req_q_full_drop", "{packet}",
        "TcpExt TCPReqQFullDrop: SYNs dropped because the SYN queue was full and SYN cookies were off.", ListenCounters::reqqFullDrops);
    namespaceCounter(meter, book, "tcp.ext.req_q_full_do_cookies", "{packet}",
        "TcpExt TCPReqQFullDoCookies: SYNs answered with a SYN cookie because the SYN queue was full.", ListenCounters::reqqFullCookies);
    namespaceCounter(meter, book, "tcp.ext.syncookies_sent", "{cookie}",
        "TcpExt SyncookiesSent: SYN cookies sent.", ListenCounters::syncookiesSent);
    namespaceCounter(meter, book, "tcp.ext.syncookies_recv", "{cookie}",
        "TcpExt SyncookiesRecv: valid SYN cookies that came back.", ListenCounters::syncookiesRecv);
    namespaceCounter(meter, book, "tcp.ext.syncookies_failed", "{cookie}",
        "TcpExt SyncookiesFailed: SYN cookies that came back invalid.", ListenCounters::syncookiesFailed);
    sysctlGauge(meter, book, "net.core.somaxconn", "The namespace's ceiling on every listen() backlog.", NamespaceSysctls::somaxconn);
    sysctlGauge(meter, book, "net.ipv4.tcp_max_syn_backlog", "The namespace's bound on half-open requests per listener.",
        NamespaceSysctls::tcpMaxSynBacklog);
    sysctlGauge(meter, book, "net.ipv4.tcp_syncookies", "0: never send SYN cookies, 1: when the SYN queue overflows, 2: always.",
        NamespaceSysctls::tcpSyncookies);
    sysctlGauge(meter, book, "net.ipv4.tcp_abort_on_overflow",
        "1: an accept-queue overflow answers with a reset instead of a silent drop.", NamespaceSysctls::tcpAbortOnOverflow);

    callbacks.add(meter.counterBuilder("tcp.state.transitions").setUnit("{transition}")
        .setDescription("TCP state transitions of every socket on the host, by old and new state.")
        .buildWithCallback(m -> book.transitions().forEach((t, n) -> {
          m.record(n, Attributes.of(STATE_FROM, stateValue(t.from()), STATE_TO, stateValue(t.to())));
        })));

    // The agent itself.
    agentCounter(meter, status, "backlog_agent.events.decoded", "{event}", "Events decoded from the BPF programs.",
        AgentStatus::decodedEvents);
    agentCounter(meter, status, "backlog_agent.events.lost", "{event}",
        "Events the kernel dropped before bpftrace could read them (its perf buffer was full).", AgentStatus::lostEvents);
    agentCounter(meter, status, "backlog_agent.events.malformed", "{line}",
        "Lines from the BPF programs that could not be decoded, skipped.", AgentStatus::malformedLines);
    agentCounter(meter, status, "backlog_agent.child.restarts", "{restart}",
        "How often a bpftrace child was started again after it exited.", AgentStatus::childRestarts);
    callbacks.add(meter.gaugeBuilder("backlog_agent.tier").ofLongs().setUnit("1")
        .setDescription("1 for the tier in use: kprobe, tracepoint, libbpf-tools, ftrace, counters or none.")
        .buildWithCallback(m -> m.record(1, Attributes.of(TIER, status.get().tier()))));
    callbacks.add(meter.gaugeBuilder("backlog_agent.concern.running").ofLongs().setUnit("1")
        .setDescription("1 when a BPF program runs for the concern, 0 when none can (or it is off); its state says whether"
            + " as the preferred program, a variant, or degraded.")
        .buildWithCallback(m -> {
          for (ConcernStatus c : status.get().concerns()) {
            m.record(c.running() ? 1 : 0, Attributes.of(CONCERN, c.concern().label(),
                CONCERN_PROGRAM, c.program() == null ? "" : c.program(), CONCERN_STATE, c.state().label()));
          }
        }));
    callbacks.add(meter.gaugeBuilder("backlog_agent.export.last_success").setUnit("s")
        .setDescription("When an OTLP export last succeeded, in seconds since the epoch, per signal.")
        .buildWithCallback(m -> status.get().lastExport().forEach((signal, ms) -> m.record(ms / 1000.0, Attributes.of(SIGNAL, signal)))));
    callbacks.add(meter.counterBuilder("backlog_agent.export.failures").setUnit("{export}")
        .setDescription("OTLP exports that failed, per signal.")
        .buildWithCallback(m -> status.get().exportFailures().forEach((signal, n) -> m.record(n, Attributes.of(SIGNAL, signal)))));
    callbacks.add(meter.counterBuilder("backlog_agent.listeners.left_out").setUnit("{listener}")
        .setDescription("Listeners not exported because the listener cap (listeners.max) was reached.")
        .buildWithCallback(m -> m.record(book.leftOut())));
  }

  /** Unregisters the callbacks (before the SDK that holds them shuts down, or is replaced). */
  public void close() {
    for (AutoCloseable c : callbacks) {
      try {
        c.close();
      } catch (Exception e) {
        // nothing to do: the SDK is going away
      }
    }
  }

  private void listenerGauge(Meter meter, ListenerBook book, String name, String description, ToLongFunction<ListenerBook.Row> value) {
    callbacks.add(meter.gaugeBuilder(name).ofLongs().setUnit("{connection}").setDescription(description)
        .buildWithCallback(m -> book.rows().forEach(r -> m.record(value.applyAsLong(r), r.identity().attributes()))));
  }

  private void listenerCounter(Meter meter, ListenerBook book, String name, String unit, String description,
      ToLongFunction<ListenerBook.Row> value) {
    callbacks.add(meter.counterBuilder(name).setUnit(unit).setDescription(description)
        .buildWithCallback(m -> book.rows().forEach(r -> m.record(value.applyAsLong(r), r.identity().attributes()))));
  }

  private void namespaceCounter(Meter meter, ListenerBook book, String name, String unit, String description,
      ToLongFunction<ListenCounters> value) {
    callbacks.add(meter.counterBuilder(name).setUnit(unit).setDescription(description)
        .buildWithCallback(m -> observeNamespaces(book, m, ns -> ns.counters() == null ? null : value.applyAsLong(ns.counters()))));
  }

  private void sysctlGauge(Meter meter, ListenerBook book, String name, String description, ToLongFunction<NamespaceSysctls> value) {
    callbacks.add(meter.gaugeBuilder(name).ofLongs().setUnit("1").setDescription(description)
        .buildWithCallback(m -> observeNamespaces(book, m, ns -> ns.sysctls() == null ? null : value.applyAsLong(ns.sysctls()))));
  }

  private static void observeNamespaces(ListenerBook book, ObservableLongMeasurement m, Function<NetNamespace, Long> value) {
    for (NetNamespace ns : book.namespaces()) {
      Long v = value.apply(ns);
      if (v != null) {
        m.record(v, namespaceAttributes(ns));
      }
    }
  }

  static Attributes namespaceAttributes(NetNamespace ns) {
    AttributesBuilder b = Attributes.builder().put(ListenerIdentity.NETNS, ns.netns());
    if (ns.name() != null) {
      b.put(NETNS_NAME, ns.name());
    }
    return b.build();
  }

  private void agentCounter(Meter meter, Supplier<AgentStatus> status, String name, String unit, String description,
      ToLongFunction<AgentStatus> value) {
    callbacks.add(meter.counterBuilder(name).setUnit(unit).setDescription(description)
        .buildWithCallback(m -> m.record(value.applyAsLong(status.get()))));
  }

  /**
   * A TCP state as network.connection.state spells it (close_wait, syn_received, ...); the kernel-only
   * states (NEW_SYN_RECV, BOUND_INACTIVE) in the same lower-case style.
   */
  static String stateValue(int number) {
    String name = TcpState.name(number);
    return switch (name) {
      case "SYN_RECV" -> "syn_received";
      case "FIN_WAIT1" -> "fin_wait_1";
      case "FIN_WAIT2" -> "fin_wait_2";
      case "CLOSE" -> "closed";
      default -> name.toLowerCase(Locale.ROOT);
    };
  }
}
