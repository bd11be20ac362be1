package dev.backlogagent.export;

import dev.backlogagent.diagnosis.Finding;
import dev.backlogagent.diagnosis.Sentences;
import dev.backlogagent.listener.IntervalReport;
import dev.backlogagent.listener.Listener;
import dev.backlogagent.listener.ListenerInterval;
import dev.backlogagent.listener.NetNamespace;
import dev.backlogagent.listener.Trouble;
import dev.backlogagent.procfs.ListenCounters;
import dev.backlogagent.procfs.NamespaceSysctls;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.common.AttributesBuilder;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.api.trace.Tracer;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One span per overflow incident per listener. An incident starts at the interval of the first drop (or
 * at the kernel's overflow_start event, when the kprobe tier saw one) and ends once the listener has gone
 * a quiet period without drops; the span's end is then the end of the last interval with drops, so its
 * duration is the incident's. Each interval with drops adds a span event with that interval's numbers;
 * the span's status is error, its description the diagnosis.
 */
public final class IncidentSpans {
  public static final String SPAN_NAME = "tcp.listen.overflow";
  static final AttributeKey<Long> REQUESTED = AttributeKey.longKey("tcp.listen.backlog.requested");
  static final AttributeKey<Long> LIMIT = AttributeKey.longKey("tcp.listen.queue.limit");
  static final AttributeKey<Long> SOMAXCONN = AttributeKey.longKey("net.core.somaxconn");
  static final AttributeKey<Long> MAX_SYN_BACKLOG = AttributeKey.longKey("net.ipv4.tcp_max_syn_backlog");
  static final AttributeKey<Long> SYNCOOKIES = AttributeKey.longKey("net.ipv4.tcp_syncookies");
  static final AttributeKey<Long> ABORT_ON_OVERFLOW = AttributeKey.longKey("net.ipv4.tcp_abort_on_overflow");
  static final AttributeKey<Long> DROPS = AttributeKey.longKey("tcp.listen.drops");
  static final AttributeKey<Long> PEAK_QUEUE = AttributeKey.longKey("tcp.listen.queue.peak");
  static final AttributeKey<Long> HANDSHAKES = AttributeKey.longKey("tcp.listen.handshakes");
  static final AttributeKey<List<String>> KIND = AttributeKey.stringArrayKey("tcp.listen.overflow.kind");
  static final AttributeKey<String> DIAGNOSIS = AttributeKey.stringKey("backlog_agent.diagnosis");
  static final AttributeKey<Boolean> CUT_SHORT = AttributeKey.booleanKey("backlog_agent.incident.cut_short");

  /** What is known about one open incident. */
  private static final class Incident {
    final ListenerIdentity identity;
    final Span span;
    final Set<Trouble> kinds = EnumSet.noneOf(Trouble.class);
    /** Per kind, the incident's total and the last finding (for its pace and whether it is shared). */
    final Map<Trouble, Long> totals = new EnumMap<>(Trouble.class);
    final Map<Trouble, Finding> last = new EnumMap<>(Trouble.class);
    Instant first;
    ListenCounters delta;
    long drops;
    long peakQueue;
    Instant lastDrop;
    Listener listener;
    NamespaceSysctls sysctls;

    Incident(ListenerIdentity identity, Span span) {
      this.identity = identity;
      this.span = span;
    }
  }

  private final Map<ListenerIdentity, Incident> open = new HashMap<>();
  private final Map<ListenerIdentity, Instant> overflowStarts = new HashMap<>();
  private Tracer tracer;

  public IncidentSpans(Tracer tracer) {
    this.tracer = tracer;
  }

  /** The kprobe tier's first refusal of a burst: a better start time than the interval's. */
  public synchronized void overflowStarted(ListenerIdentity identity, Instant at) {
    overflowStarts.putIfAbsent(identity, at);
  }

  /** Takes one interval: opens, extends and ends incidents. */
  public synchronized void update(IntervalReport report, ListenerFilter filter, Duration quietPeriod) {
    Instant end = report.end();
    Instant start = end.minus(report.length());
    for (ListenerInterval li : report.listeners()) {
      Listener l = li.listener();
      if (l == null || !filter.admits(l, report.inventory())) {
        continue;
      }
      boolean cookies = li.troubles().contains(Trouble.SYNCOOKIES);
      if (li.drops() == 0 && !cookies) {
        continue;
      }
      ListenerIdentity id = ListenerIdentity.of(l);
      NamespaceSysctls sysctls = report.inventory().namespace(l.key().netns()).map(NetNamespace::sysctls).orElse(null);
      Incident incident = open.get(id);
      if (incident == null) {
        Instant first = overflowStarts.getOrDefault(id, start);
        Span span = tracer.spanBuilder(SPAN_NAME)
            .setNoParent()
            .setSpanKind(SpanKind.INTERNAL)
            .setStartTimestamp(first.isBefore(start) ? start : first)
            .setAllAttributes(id.attributes())
            .startSpan();
        incident = new Incident(id, span);
        incident.first = first.isBefore(start) ? start : first;
        open.put(id, incident);
      }
      long peak = Math.max(l.queue(), li.peakQueue() + 1);
      incident.drops += li.drops();
      incident.peakQueue = Math.max(incident.peakQueue, peak);
      incident.kinds.addAll(li.troubles());
      for (Finding f : li.findings()) {
        incident.totals.merge(f.trouble(), f.count(), Long::sum);
        incident.last.put(f.trouble(), f);
      }
      incident.delta = report.counterDeltas().get(l.key().netns());
      incident.lastDrop = end;
      incident.listener = l;
      incident.sysctls = sysctls;
      incident.span.addEvent("drops", Attributes.builder()
          .put(DROPS, li.drops())
          .put(PEAK_QUEUE, peak)
          .put(HANDSHAKES, li.handshakes())
          .put(KIND, kinds(li.troubles()))
          .build(), end);
      describe(incident);
    }
    overflowStarts.clear();
    for (Iterator<Incident> it = open.values().iterator(); it.hasNext(); ) {
      Incident incident = it.next();
      if (!incident.lastDrop.isAfter(end.minus(quietPeriod))) {
        incident.span.end(incident.lastDrop);
        it.remove();
      }
    }
  }

  /** Ends every open incident now (shutdown, or the tracer is being replaced); marked as cut short. */
  public synchronized void endAll() {
    for (Incident incident : open.values()) {
      incident.span.setAttribute(CUT_SHORT, true);
      incident.span.end(incident.lastDrop);
    }
    open.clear();
  }

  /** Takes another tracer for incidents still to come (after ending the open ones). */
  public synchronized void useTracer(Tracer next) {
    endAll();
    this.tracer = next;
  }

  public synchronized int openIncidents() {
    return open.size();
  }

  /** The incident's attributes as of now: totals, limits and settings, and the diagnosis. */
  private static void describe(Incident incident) {
    Listener l = incident.listener;
    NamespaceSysctls s = incident.sysctls;
    AttributesBuilder b = Attributes.builder()
        .put(LIMIT, l.backlog())
        .put(DROPS, incident.drops)
        .put(PEAK_QUEUE, incident.peakQueue)
        .put(KIND, kinds(incident.kinds));
    if (l.requestedBacklog() != null) {
      b.put(REQUESTED, l.requestedBacklog());
    }
    if (s != null) {
      b.put(SOMAXCONN, s.somaxconn()).put(MAX_SYN_BACKLOG, s.tcpMaxSynBacklog())
          .put(SYNCOOKIES, s.tcpSyncookies()).put(ABORT_ON_OVERFLOW, s.tcpAbortOnOverflow());
    }
    String diagnosis = diagnosis(incident);
    b.put(DIAGNOSIS, diagnosis);
    incident.span.setAllAttributes(b.build());
    incident.span.setStatus(StatusCode.ERROR, diagnosis);
  }

  static List<String> kinds(Set<Trouble> troubles) {
    List<String> kinds = new ArrayList<>();
    for (Trouble t : troubles) {
      kinds.add(t.kind());
    }
    if (kinds.isEmpty()) {
      kinds.add("unknown");
    }
    return kinds;
  }

  /**
   * One sentence in the shared vocabulary ({@link Sentences}): who, then each kind of trouble with the
   * incident's total of it, over the incident so far.
   */
  static String diagnosis(Incident incident) {
    Sentences.Context context = new Sentences.Context(incident.listener, incident.sysctls, incident.delta, incident.peakQueue - 1);
    Duration period = Duration.between(incident.first, incident.lastDrop);
    List<String> clauses = new ArrayList<>();
    for (Map.Entry<Trouble, Long> e : incident.totals.entrySet()) {
      Finding last = incident.last.get(e.getKey());
      clauses.add(Sentences.describe(new Finding(e.getKey(), e.getValue(), last.pace(), last.accepts(), last.shared()), context, period));
    }
    if (clauses.isEmpty()) {
      clauses.add(Sentences.describe(Finding.of(Trouble.UNEXPLAINED_DROPS, incident.drops), context, period));
    }
    return incident.identity.label() + ": " + String.join("; ", clauses) + ".";
  }
}
