package dev.backlogagent.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.backlogagent.testing.OtlpReceiver.Outage;
import dev.backlogagent.testing.OtlpReceiver.Protocol;
import dev.backlogagent.testing.OtlpReceiver.Received;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.metrics.LongCounter;
import io.opentelemetry.api.metrics.Meter;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.exporter.otlp.http.metrics.OtlpHttpMetricExporter;
import io.opentelemetry.exporter.otlp.http.trace.OtlpHttpSpanExporter;
import io.opentelemetry.exporter.otlp.metrics.OtlpGrpcMetricExporter;
import io.opentelemetry.exporter.otlp.trace.OtlpGrpcSpanExporter;
import io.opentelemetry.proto.trace.v1.Span;
import io.opentelemetry.sdk.common.CompletableResultCode;
import io.opentelemetry.sdk.common.export.RetryPolicy;
import io.opentelemetry.sdk.metrics.Aggregation;
import io.opentelemetry.sdk.metrics.InstrumentType;
import io.opentelemetry.sdk.metrics.SdkMeterProvider;
import io.opentelemetry.sdk.metrics.data.AggregationTemporality;
import io.opentelemetry.sdk.metrics.data.MetricData;
import io.opentelemetry.sdk.metrics.export.MetricExporter;
import io.opentelemetry.sdk.metrics.export.PeriodicMetricReader;
import io.opentelemetry.sdk.resources.Resource;
import io.opentelemetry.sdk.trace.SdkTracerProvider;
import io.opentelemetry.sdk.trace.export.SimpleSpanProcessor;
import io.opentelemetry.sdk.trace.export.SpanExporter;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.Socket;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/** The OTLP receiver, fed by the SDK's own OTLP exporters over both protocols: what they send is what it reports. */
class OtlpReceiverTest {
  private static final Duration TIMEOUT = Duration.ofSeconds(15);
  private static final AttributeKey<Long> PORT = AttributeKey.longKey("port");
  private static final Resource RESOURCE =
      Resource.create(Attributes.of(AttributeKey.stringKey("service.name"), "otlp-receiver-test"));

  static Stream<Arguments> protocolsAndCompressions() {
    return Stream.of(Protocol.values()).flatMap(p -> Stream.of(Arguments.of(p, "none"), Arguments.of(p, "gzip")));
  }

  static Stream<Arguments> protocolsAndOutages() {
    return Stream.of(Protocol.values()).flatMap(p -> Stream.of(Outage.values()).map(o -> Arguments.of(p, o)));
  }

  @ParameterizedTest(name = "{0}, compression {1}")
  @MethodSource("protocolsAndCompressions")
  void a_counter_a_histogram_a_gauge_and_a_span_arrive_with_their_values_attributes_and_headers(
      Protocol protocol, String compression) throws Exception {
    try (OtlpReceiver receiver = OtlpReceiver.start(protocol);
        Telemetry telemetry = Telemetry.sendingTo(receiver, compression, null)) {
      Meter meter = telemetry.meters().get("otlp-receiver-test");
      LongCounter connections = meter.counterBuilder("test.connections").setUnit("{connection}").build();
      connections.add(3, Attributes.of(PORT, 80L));
      connections.add(4, Attributes.of(PORT, 80L));
      connections.add(10, Attributes.of(PORT, 443L));
      meter.histogramBuilder("test.accept.wait").setUnit("ms").build().record(1.5, Attributes.of(PORT, 80L));
      meter.histogramBuilder("test.accept.wait").setUnit("ms").build().record(4.5, Attributes.of(PORT, 80L));
      meter.gaugeBuilder("test.queue.length").ofLongs().buildWithCallback(g -> g.record(42, Attributes.of(PORT, 80L)));
      telemetry.tracers().get("otlp-receiver-test").spanBuilder("accept").setSpanKind(SpanKind.SERVER)
          .setAttribute(PORT, 80L).startSpan().end();

      assertThat(telemetry.flush()).as("the exporters' results").isTrue();
      Received got = receiver.awaitThat("the metrics and the span", TIMEOUT,
          r -> r.sum("test.connections", Map.of("port", 80)).isPresent() && !r.spans("accept").isEmpty());

      assertThat(got.sum("test.connections", Map.of("port", 80))).contains(7.0);
      assertThat(got.sum("test.connections", Map.of("port", "443"))).contains(10.0);
      assertThat(got.histogram("test.accept.wait", Map.of("port", 80))).hasValueSatisfying(h -> {
        assertThat(h.getCount()).isEqualTo(2);
        assertThat(h.getSum()).isEqualTo(6.0);
      });
      assertThat(got.gauge("test.queue.length", Map.of("port", 80))).contains(42.0);
      List<Span> spans = got.spans("accept");
      assertThat(spans).hasSize(1);
      assertThat(spans.get(0).getKind()).isEqualTo(Span.SpanKind.SPAN_KIND_SERVER);
      assertThat(Received.attributes(spans.get(0).getAttributesList())).containsEntry("port", 80L);
      assertThat(got.resourceAttributes()).containsEntry("service.name", "otlp-receiver-test");
      assertThat(got.metricsRequests()).isNotEmpty();
      assertThat(got.traceRequests()).hasSize(1);
      assertThat(got.requestCount()).isEqualTo(got.metricsRequests().size() + 1);
      assertThat(got.headers()).hasSize(got.requestCount())
          .allSatisfy(h -> assertThat(h).containsEntry("x-test-token", "t0k3n"));
      if (compression.equals("gzip")) {
        String encoding = protocol == Protocol.GRPC ? "grpc-encoding" : "content-encoding";
        assertThat(got.headers()).allSatisfy(h -> assertThat(h).containsEntry(encoding, "gzip"));
      }
      assertThatThrownBy(() -> got.sum("test.connections", Map.of()))
          .as("a sum named by too few attributes is a mistake, not something to wait for")
          .isInstanceOf(IllegalStateException.class)
          .hasMessageContaining("2 series");
    }
  }

  @Test
  void a_wait_that_times_out_says_what_was_awaited_and_what_did_arrive() throws Exception {
    try (OtlpReceiver receiver = OtlpReceiver.start(Protocol.GRPC);
        Telemetry telemetry = Telemetry.sendingTo(receiver, "none", null)) {
      telemetry.meters().get("otlp-receiver-test").counterBuilder("test.connections").build()
          .add(7, Attributes.of(PORT, 80L));
      assertThat(telemetry.flush()).isTrue();

      assertThatThrownBy(() -> receiver.await("a sum of test.never", Duration.ofMillis(300),
              r -> r.sum("test.never", Map.of())))
          .isInstanceOf(AssertionError.class)
          .hasMessageContaining("a sum of test.never")
          .hasMessageContaining("test.connections sum cumulative {port=80} = 7.0")
          .hasMessageContaining("otlp-receiver-test");
    }
  }

  @ParameterizedTest(name = "{0}, {1}")
  @MethodSource("protocolsAndOutages")
  void a_receiver_that_goes_down_fails_exports_and_takes_them_again_on_the_same_port(Protocol protocol, Outage outage)
      throws Exception {
    try (OtlpReceiver receiver = OtlpReceiver.start(protocol);
        Telemetry telemetry = Telemetry.sendingTo(receiver, "none", null)) {
      LongCounter connections = telemetry.meters().get("otlp-receiver-test").counterBuilder("test.connections").build();
      connections.add(1, Attributes.of(PORT, 80L));
      assertThat(telemetry.flush()).as("export before the outage").isTrue();

      receiver.goDown(outage);
      if (outage == Outage.REFUSE_CONNECTIONS) {
        assertThatThrownBy(() -> new Socket(InetAddress.getLoopbackAddress(), receiver.port()).close())
            .isInstanceOf(ConnectException.class);
      } else {
        new Socket(InetAddress.getLoopbackAddress(), receiver.port()).close();
      }
      connections.add(2, Attributes.of(PORT, 80L));
      assertThat(telemetry.flush()).as("export during the outage").isFalse();

      receiver.comeUp();
      connections.add(3, Attributes.of(PORT, 80L));
      assertThat(telemetry.flush()).as("export after the outage, to the endpoint given before it").isTrue();

      Received got = receiver.received();
      assertThat(got.sum("test.connections", Map.of("port", 80))).as("cumulative, so nothing is lost").contains(6.0);
      assertThat(got.requestCount()).isEqualTo(2);
      assertThat(got.rejectedCount()).isEqualTo(outage == Outage.ANSWER_UNAVAILABLE ? 1 : 0);
    }
  }

  @ParameterizedTest(name = "{0}, {1}")
  @MethodSource("protocolsAndOutages")
  void an_exporter_retrying_through_an_outage_delivers_once_the_receiver_is_back(Protocol protocol, Outage outage)
      throws Exception {
    RetryPolicy patient =
        RetryPolicy.builder().setMaxAttempts(5).setInitialBackoff(Duration.ofSeconds(1))
            .setMaxBackoff(Duration.ofSeconds(2)).build();
    try (OtlpReceiver receiver = OtlpReceiver.start(protocol);
        Telemetry telemetry = Telemetry.sendingTo(receiver, "none", patient)) {
      receiver.goDown(outage);
      telemetry.meters().get("otlp-receiver-test").counterBuilder("test.connections").build()
          .add(5, Attributes.of(PORT, 80L));
      CompletableResultCode flushing = telemetry.flushMetrics();
      if (outage == Outage.ANSWER_UNAVAILABLE) {
        receiver.awaitThat("a first attempt, rejected", TIMEOUT, r -> r.rejectedCount() >= 1);
      } else {
        // The first attempt is refused well within this. The backoffs are jittered between 0 and 1, 1.5, 2 and 2 s:
        // the chance that all four retries fit in here too is about 1 in 20,000.
        Thread.sleep(300);
      }
      receiver.comeUp();

      assertThat(flushing.join(30, TimeUnit.SECONDS).isSuccess()).as("the retried export").isTrue();
      if (outage == Outage.ANSWER_UNAVAILABLE) {
        assertThat(receiver.received().rejectedCount()).isPositive();
      }
      assertThat(receiver.received().sum("test.connections", Map.of("port", 80))).contains(5.0);
    }
  }

  @ParameterizedTest
  @EnumSource(Protocol.class)
  void the_endpoints_are_what_the_sdk_expects_for_each_protocol(Protocol protocol) throws Exception {
    try (OtlpReceiver receiver = OtlpReceiver.start(protocol)) {
      String base = "http://127.0.0.1:" + receiver.port();
      assertThat(receiver.endpoint()).isEqualTo(base);
      assertThat(receiver.exporterEnvironment())
          .containsEntry("OTEL_EXPORTER_OTLP_ENDPOINT", base)
          .containsEntry("OTEL_EXPORTER_OTLP_PROTOCOL", protocol == Protocol.GRPC ? "grpc" : "http/protobuf");
      assertThat(receiver.metricsEndpoint()).isEqualTo(protocol == Protocol.GRPC ? base : base + "/v1/metrics");
      assertThat(receiver.tracesEndpoint()).isEqualTo(protocol == Protocol.GRPC ? base : base + "/v1/traces");
    }
  }

  /** The SDK's providers exporting to the receiver through its real OTLP exporters; metrics leave on flush only. */
  private record Telemetry(SdkMeterProvider meters, SdkTracerProvider tracers, LastExport lastMetricsExport)
      implements AutoCloseable {

    /** {@code retry} null: no retries, so that an export during an outage fails at once. */
    static Telemetry sendingTo(OtlpReceiver receiver, String compression, RetryPolicy retry) {
      MetricExporter metrics;
      SpanExporter spans;
      if (receiver.protocol() == Protocol.GRPC) {
        metrics = OtlpGrpcMetricExporter.builder().setEndpoint(receiver.metricsEndpoint()).setCompression(compression)
            .addHeader("x-test-token", "t0k3n").setRetryPolicy(retry).build();
        spans = OtlpGrpcSpanExporter.builder().setEndpoint(receiver.tracesEndpoint()).setCompression(compression)
            .addHeader("x-test-token", "t0k3n").setRetryPolicy(retry).build();
      } else {
        metrics = OtlpHttpMetricExporter.builder().setEndpoint(receiver.metricsEndpoint()).setCompression(compression)
            .addHeader("x-test-token", "t0k3n").setRetryPolicy(retry).build();
        spans = OtlpHttpSpanExporter.builder().setEndpoint(receiver.tracesEndpoint()).setCompression(compression)
            .addHeader("x-test-token", "t0k3n").setRetryPolicy(retry).build();
      }
      LastExport lastMetricsExport = new LastExport(metrics);
      SdkMeterProvider meters = SdkMeterProvider.builder().setResource(RESOURCE)
          .registerMetricReader(PeriodicMetricReader.builder(lastMetricsExport).setInterval(Duration.ofHours(1)).build())
          .build();
      SdkTracerProvider tracers = SdkTracerProvider.builder().setResource(RESOURCE)
          .addSpanProcessor(SimpleSpanProcessor.create(spans)).build();
      return new Telemetry(meters, tracers, lastMetricsExport);
    }

    /** Exports everything now and waits (through any retries); whether every export succeeded. */
    boolean flush() {
      boolean spans = tracers.forceFlush().join(30, TimeUnit.SECONDS).isSuccess();
      return flushMetrics().join(30, TimeUnit.SECONDS).isSuccess() && spans;
    }

    /**
     * Starts exporting the metrics; the result is the export's own. (The reader's forceFlush succeeds even when the
     * export fails: it only says that the reader ran.)
     */
    CompletableResultCode flushMetrics() {
      CompletableResultCode exported = new CompletableResultCode();
      CompletableResultCode flushed = meters.forceFlush();
      flushed.whenComplete(() -> {
        CompletableResultCode last = lastMetricsExport.result;
        if (last != null && last.isSuccess()) {
          exported.succeed();
        } else {
          exported.fail();
        }
      });
      return exported;
    }

    @Override
    public void close() {
      tracers.shutdown().join(10, TimeUnit.SECONDS);
      meters.shutdown().join(10, TimeUnit.SECONDS);
    }
  }

  /** Passes exports on to the real exporter and keeps the result of the latest. */
  private static final class LastExport implements MetricExporter {
    private final MetricExporter exporter;
    private volatile CompletableResultCode result;

    LastExport(MetricExporter exporter) {
      this.exporter = exporter;
    }

    @Override
    public CompletableResultCode export(Collection<MetricData> metrics) {
      result = exporter.export(metrics);
      return result;
    }

    @Override
    public AggregationTemporality getAggregationTemporality(InstrumentType type) {
      return exporter.getAggregationTemporality(type);
    }

    @Override
    public Aggregation getDefaultAggregation(InstrumentType type) {
      return exporter.getDefaultAggregation(type);
    }

    @Override
    public CompletableResultCode flush() {
      return exporter.flush();
    }

    @Override
    public CompletableResultCode shutdown() {
      return exporter.shutdown();
    }
  }
}
