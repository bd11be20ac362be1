package dev.backlogagent.export;

import static org.assertj.core.api.Assertions.assertThat;

import dev.backlogagent.decode.AddressFamily;
import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.diagnosis.AcceptPace;
import dev.backlogagent.diagnosis.Finding;
import dev.backlogagent.listener.IntervalReport;
import dev.backlogagent.listener.Inventory;
import dev.backlogagent.listener.Listener;
import dev.backlogagent.listener.ListenerFlag;
import dev.backlogagent.listener.ListenerInterval;
import dev.backlogagent.listener.NetNamespace;
import dev.backlogagent.listener.Trouble;
import dev.backlogagent.procfs.ListenCounters;
import dev.backlogagent.procfs.NamespaceSysctls;
import dev.backlogagent.procfs.ProcessIdentity;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.sdk.testing.exporter.InMemorySpanExporter;
import io.opentelemetry.sdk.trace.SdkTracerProvider;
import io.opentelemetry.sdk.trace.data.SpanData;
import io.opentelemetry.sdk.trace.export.SimpleSpanProcessor;
import java.time.Duration;
import java.time.Instant;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The incident lifecycle interval by interval (the kernel end to end is DaemonOtlpTest's): when a span
 * opens, what each interval adds, when the quiet period ends it, and at what time.
 */
class IncidentSpansTest {
  private static final Instant T0 = Instant.parse("2026-11-21T10:00:00Z");
  private static final NamespaceSysctls SYSCTLS = new NamespaceSysctls(64, 512, 1, 0);
  private static final Listener WEB = new Listener(new ListenerKey(4026531840L, AddressFamily.IPV4, "0.0.0.0", 8080), 65, 64, 1024L, 0,
      List.of(new ProcessIdentity(812, "nginx", "nginx: master", null)), EnumSet.of(ListenerFlag.TRUNCATED), 77);

  private final InMemorySpanExporter exporter = InMemorySpanExporter.create();
  private final IncidentSpans incidents = new IncidentSpans(
      SdkTracerProvider.builder().addSpanProcessor(SimpleSpanProcessor.create(exporter)).build().get("test"));

  private static IntervalReport second(int n, long drops) {
    Inventory inventory = new Inventory(
        List.of(new NetNamespace(WEB.key().netns(), null, SYSCTLS, new ListenCounters(0, 0, 0, 0, 0, 0, 0))), List.of(WEB),
        T0.plusSeconds(n), List.of());
    List<ListenerInterval> listeners = drops == 0 ? List.of() : List.of(new ListenerInterval(WEB,
        WEB.key(), drops, 10, 64, 0, 0, Map.of(), Map.of(), List.of(), List.of(),
        List.of(new Finding(Trouble.ACCEPT_QUEUE_OVERFLOW, drops, AcceptPace.STALLED, 0, false))));
    return new IntervalReport(T0.plusSeconds(n), Duration.ofSeconds(1), inventory, Map.of(), listeners, Map.of(), Map.of(), List.of());
  }

  @Test
  void anIncidentSpansFromTheFirstDropToTheLastAndEndsAfterTheQuietPeriod() {
    Duration quiet = Duration.ofSeconds(3);
    incidents.update(second(1, 0), ListenerFilter.all(), quiet);
    incidents.update(second(2, 30), ListenerFilter.all(), quiet);
    incidents.update(second(3, 0), ListenerFilter.all(), quiet);
    incidents.update(second(4, 12), ListenerFilter.all(), quiet);
    for (int s = 5; s <= 6; s++) {
      incidents.update(second(s, 0), ListenerFilter.all(), quiet);
    }
    assertThat(exporter.getFinishedSpanItems()).as("still within the quiet period").isEmpty();
    assertThat(incidents.openIncidents()).isEqualTo(1);
    incidents.update(second(7, 0), ListenerFilter.all(), quiet);

    assertThat(exporter.getFinishedSpanItems()).singleElement().satisfies(span -> {
      assertThat(span.getName()).isEqualTo("tcp.listen.overflow");
      // From the start of the first interval with drops to the end of the last one.
      assertThat(span.getStartEpochNanos()).isEqualTo(nanos(T0.plusSeconds(1)));
      assertThat(span.getEndEpochNanos()).isEqualTo(nanos(T0.plusSeconds(4)));
      assertThat(span.getEvents()).hasSize(2);
      assertThat(span.getEvents().get(0).getAttributes().get(AttributeKey.longKey("tcp.listen.drops"))).isEqualTo(30);
      assertThat(span.getEvents().get(1).getAttributes().get(AttributeKey.longKey("tcp.listen.drops"))).isEqualTo(12);
      assertThat(span.getAttributes().get(AttributeKey.longKey("tcp.listen.drops"))).isEqualTo(42);
      assertThat(span.getAttributes().get(AttributeKey.longKey("tcp.listen.backlog.requested"))).isEqualTo(1024);
      assertThat(span.getAttributes().get(AttributeKey.longKey("net.core.somaxconn"))).isEqualTo(64);
      assertThat(span.getAttributes().get(AttributeKey.longKey("process.pid"))).isEqualTo(812);
      assertThat(span.getAttributes().get(AttributeKey.stringArrayKey("tcp.listen.overflow.kind"))).containsExactly("accept_queue");
      assertThat(span.getAttributes().get(AttributeKey.stringKey("backlog_agent.diagnosis"))).isEqualTo(
          "nginx[812] 0.0.0.0:8080: accept queue full 65/64 — 42 SYNs and third ACKs dropped in 3 s; the application "
              + "accepted no connection in 3 s: it is stalled (a bigger backlog would not help); backlog requested 1024, "
              + "clamped by net.core.somaxconn=64.");
      assertThat(span.getStatus().getStatusCode()).isEqualTo(StatusCode.ERROR);
    });
    assertThat(incidents.openIncidents()).isZero();

    // Drops again: a new incident.
    incidents.update(second(8, 5), ListenerFilter.all(), quiet);
    incidents.endAll();
    List<SpanData> spans = exporter.getFinishedSpanItems();
    assertThat(spans).hasSize(2);
    assertThat(spans.get(1).getAttributes().get(AttributeKey.booleanKey("backlog_agent.incident.cut_short"))).isTrue();
    assertThat(spans.get(1).getStartEpochNanos()).isEqualTo(nanos(T0.plusSeconds(7)));
  }

  @Test
  void aFilteredOutListenerHasNoIncident() {
    ListenerFilter otherPort = new ListenerFilter(new dev.backlogagent.config.AgentConfig.Listeners(List.of(443), null, null, null));
    incidents.update(second(1, 30), otherPort, Duration.ofSeconds(1));
    incidents.update(second(5, 0), otherPort, Duration.ofSeconds(1));
    assertThat(exporter.getFinishedSpanItems()).isEmpty();
    assertThat(incidents.openIncidents()).isZero();
  }

  private static long nanos(Instant t) {
    return TimeUnit.SECONDS.toNanos(t.getEpochSecond()) + t.getNano();
  }
}
