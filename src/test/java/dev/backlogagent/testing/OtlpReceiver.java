package dev.backlogagent.testing;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.grpc.BindableService;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import io.opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest;
import io.opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse;
import io.opentelemetry.proto.collector.logs.v1.LogsServiceGrpc;
import io.opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest;
import io.opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceResponse;
import io.opentelemetry.proto.collector.metrics.v1.MetricsServiceGrpc;
import io.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
import io.opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse;
import io.opentelemetry.proto.collector.trace.v1.TraceServiceGrpc;
import io.opentelemetry.proto.common.v1.AnyValue;
import io.opentelemetry.proto.common.v1.KeyValue;
import io.opentelemetry.proto.metrics.v1.AggregationTemporality;
import io.opentelemetry.proto.metrics.v1.HistogramDataPoint;
import io.opentelemetry.proto.metrics.v1.Metric;
import io.opentelemetry.proto.metrics.v1.NumberDataPoint;
import io.opentelemetry.proto.metrics.v1.ResourceMetrics;
import io.opentelemetry.proto.metrics.v1.ScopeMetrics;
import io.opentelemetry.proto.resource.v1.Resource;
import io.opentelemetry.proto.trace.v1.ResourceSpans;
import io.opentelemetry.proto.trace.v1.Span;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import java.util.function.Predicate;
import java.util.function.ToLongFunction;
import java.util.stream.Collectors;
import java.util.zip.GZIPInputStream;

/**
 * A real OTLP receiver for tests, on 127.0.0.1 and a free port, over gRPC or HTTP/protobuf, built from the official
 * protobuf definitions: it records every export request it accepts and can go down and come back on the same port.
 *
 * <p>Tests read what arrived through a {@link Received} snapshot, usually by waiting for it:
 * {@code receiver.await("7 requests on port 80", ofSeconds(10), r -> r.sum("x.requests", Map.of("port", 80))
 * .filter(v -> v >= 7))}.
 */
public final class OtlpReceiver implements AutoCloseable {

  /** The two OTLP transports, with the name OTEL_EXPORTER_OTLP_PROTOCOL gives each. */
  public enum Protocol {
    GRPC("grpc"),
    HTTP_PROTOBUF("http/protobuf");

    private final String otelName;

    Protocol(String otelName) {
      this.otelName = otelName;
    }

    /** The value of OTEL_EXPORTER_OTLP_PROTOCOL that selects this transport. */
    public String otelName() {
      return otelName;
    }
  }

  /** How the receiver is down: as a collector that is not running, or as one that is overloaded. */
  public enum Outage {
    /** The port is closed: connections are refused. */
    REFUSE_CONNECTIONS,
    /** The port stays open and every export is answered UNAVAILABLE (gRPC) or 503 (HTTP), both retryable in OTLP. */
    ANSWER_UNAVAILABLE
  }

  private static final InetAddress LOOPBACK = InetAddress.getLoopbackAddress();
  private static final Context.Key<Map<String, String>> HEADERS = Context.key("otlp-request-headers");

  private final Protocol protocol;
  private final Transport transport;
  private final ExecutorService handlers;
  private final Object lock = new Object();
  private final List<Accepted> accepted = new ArrayList<>(); // guarded by lock
  private int rejected; // guarded by lock
  private long changes; // guarded by lock: bumped on every request, so that waiters wake
  private final Object transitions = new Object();
  private volatile Outage outage; // null while up
  private boolean listening; // guarded by transitions
  private boolean closed; // guarded by transitions
  private final int port;

  private OtlpReceiver(Protocol protocol) throws IOException {
    this.protocol = protocol;
    AtomicInteger threads = new AtomicInteger();
    this.handlers =
        Executors.newFixedThreadPool(
            2,
            r -> {
              Thread t = new Thread(r, "otlp-receiver-" + threads.incrementAndGet());
              t.setDaemon(true);
              return t;
            });
    this.transport = protocol == Protocol.GRPC ? new GrpcTransport() : new HttpTransport();
    try {
      this.port = transport.listen(0);
    } catch (IOException | RuntimeException e) {
      handlers.shutdownNow();
      throw e;
    }
    this.listening = true;
  }

  /** Starts a receiver listening on 127.0.0.1 and a free port. */
  public static OtlpReceiver start(Protocol protocol) throws IOException {
    return new OtlpReceiver(protocol);
  }

  public Protocol protocol() {
    return protocol;
  }

  /** The port, the same for the receiver's whole life, down or up. */
  public int port() {
    return port;
  }

  /** {@code http://127.0.0.1:PORT}: OTEL_EXPORTER_OTLP_ENDPOINT for either protocol. */
  public String endpoint() {
    return "http://" + LOOPBACK.getHostAddress() + ":" + port;
  }

  /** What a metric exporter's setEndpoint and OTEL_EXPORTER_OTLP_METRICS_ENDPOINT take (HTTP adds /v1/metrics). */
  public String metricsEndpoint() {
    return protocol == Protocol.GRPC ? endpoint() : endpoint() + "/v1/metrics";
  }

  /** What a span exporter's setEndpoint and OTEL_EXPORTER_OTLP_TRACES_ENDPOINT take (HTTP adds /v1/traces). */
  public String tracesEndpoint() {
    return protocol == Protocol.GRPC ? endpoint() : endpoint() + "/v1/traces";
  }

  /** OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_EXPORTER_OTLP_PROTOCOL pointing an SDK-configured process here. */
  public Map<String, String> exporterEnvironment() {
    return Map.of("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint(), "OTEL_EXPORTER_OTLP_PROTOCOL", protocol.otelName());
  }

  /** Goes down as {@code how} says, until {@link #comeUp()}. */
  public void goDown(Outage how) throws IOException {
    synchronized (transitions) {
      requireOpen();
      outage = how;
      if (how == Outage.REFUSE_CONNECTIONS && listening) {
        transport.stop();
        listening = false;
      } else if (how == Outage.ANSWER_UNAVAILABLE && !listening) {
        transport.listen(port);
        listening = true;
      }
    }
  }

  /** Listens again, on the same port, and accepts exports. */
  public void comeUp() throws IOException {
    synchronized (transitions) {
      requireOpen();
      if (!listening) {
        transport.listen(port);
        listening = true;
      }
      outage = null;
    }
  }

  /** What has arrived so far. */
  public Received received() {
    synchronized (lock) {
      return new Received(List.copyOf(accepted), rejected);
    }
  }

  /**
   * Waits until {@code probe} finds something in what has arrived and returns it; after {@code timeout}, fails with
   * {@code what} (what was awaited) and a summary of what did arrive.
   */
  public <T> T await(String what, Duration timeout, Function<Received, Optional<T>> probe)
      throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      long seen;
      Received now;
      synchronized (lock) {
        seen = changes;
        now = new Received(List.copyOf(accepted), rejected);
      }
      Optional<T> found = probe.apply(now);
      if (found.isPresent()) {
        return found.get();
      }
      synchronized (lock) {
        while (changes == seen) {
          long left = deadline - System.nanoTime();
          if (left <= 0) {
            throw new AssertionError(
                "waited " + timeout.toMillis() + " ms for " + what + " from the OTLP receiver (" + protocol.otelName()
                    + ", port " + port + "), which " + now);
          }
          TimeUnit.NANOSECONDS.timedWait(lock, left);
        }
      }
    }
  }

  /** Waits until {@code condition} holds over what has arrived and returns that; fails as {@link #await} does. */
  public Received awaitThat(String what, Duration timeout, Predicate<Received> condition) throws InterruptedException {
    return await(what, timeout, received -> Optional.of(received).filter(condition));
  }

  /** Stops listening and ends the handler threads; idempotent. */
  @Override
  public void close() {
    synchronized (transitions) {
      if (closed) {
        return;
      }
      closed = true;
      if (listening) {
        transport.stop();
        listening = false;
      }
      handlers.shutdownNow();
    }
  }

  private void requireOpen() {
    if (closed) {
      throw new IllegalStateException("the OTLP receiver is closed");
    }
  }

  /** Records an export request; false when the receiver is down and the request must be answered as unavailable. */
  private boolean accept(Message request, Map<String, String> headers) {
    boolean up = outage == null;
    synchronized (lock) {
      changes++;
      if (up) {
        accepted.add(new Accepted(request, headers));
      } else {
        rejected++;
      }
      lock.notifyAll();
    }
    return up;
  }

  private record Accepted(Message request, Map<String, String> headers) {}

  /** What the receiver had accepted (and rejected while down) at one moment, with the lookups tests need. */
  public static final class Received {
    private static final int DESCRIBED_SERIES = 40;
    private final List<Accepted> accepted;
    private final int rejected;

    private Received(List<Accepted> accepted, int rejected) {
      this.accepted = accepted;
      this.rejected = rejected;
    }

    /** Export requests accepted, all signals (logs included). */
    public int requestCount() {
      return accepted.size();
    }

    /** Export requests answered as unavailable while the receiver was down (refused connections are not counted). */
    public int rejectedCount() {
      return rejected;
    }

    /** The metrics export requests, in the order they arrived. */
    public List<ExportMetricsServiceRequest> metricsRequests() {
      return requests(ExportMetricsServiceRequest.class);
    }

    /** The trace export requests, in the order they arrived. */
    public List<ExportTraceServiceRequest> traceRequests() {
      return requests(ExportTraceServiceRequest.class);
    }

    /** The headers (gRPC metadata) of each accepted request in arrival order; names in lower case. */
    public List<Map<String, String>> headers() {
      return accepted.stream().map(Accepted::headers).toList();
    }

    /**
     * The latest value of the cumulative sum {@code metric} in the one series whose attributes include
     * {@code attributes} (compared as text, so 80 and "80" match alike). Empty when none has arrived; throws when
     * the metric is not a cumulative sum or several series match, mistakes that waiting will not mend.
     */
    public Optional<Double> sum(String metric, Map<String, ?> attributes) {
      return latest(metric, Metric.DataCase.SUM, attributes, m -> {
            if (m.getSum().getAggregationTemporality() != AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE) {
              throw new IllegalStateException(
                  metric + " is a " + m.getSum().getAggregationTemporality() + " sum; sum() reads cumulative sums");
            }
            return m.getSum().getDataPointsList();
          }, NumberDataPoint::getAttributesList, NumberDataPoint::getTimeUnixNano)
          .map(Received::value);
    }

    /** The latest value of the gauge {@code metric} in the one series whose attributes include {@code attributes}. */
    public Optional<Double> gauge(String metric, Map<String, ?> attributes) {
      return latest(metric, Metric.DataCase.GAUGE, attributes, m -> m.getGauge().getDataPointsList(),
          NumberDataPoint::getAttributesList, NumberDataPoint::getTimeUnixNano)
          .map(Received::value);
    }

    /** The latest point (count, sum, buckets) of the histogram {@code metric} in the one matching series. */
    public Optional<HistogramDataPoint> histogram(String metric, Map<String, ?> attributes) {
      return latest(metric, Metric.DataCase.HISTOGRAM, attributes, m -> m.getHistogram().getDataPointsList(),
          HistogramDataPoint::getAttributesList, HistogramDataPoint::getTimeUnixNano);
    }

    /** Every span called {@code name}, in arrival order. */
    public List<Span> spans(String name) {
      return traceRequests().stream()
          .flatMap(r -> r.getResourceSpansList().stream())
          .flatMap(r -> r.getScopeSpansList().stream())
          .flatMap(s -> s.getSpansList().stream())
          .filter(s -> s.getName().equals(name))
          .toList();
    }

    /** The attributes of the resource that sent the latest metrics or spans; empty before any. */
    public Map<String, Object> resourceAttributes() {
      Resource latest = null;
      for (Accepted a : accepted) {
        if (a.request() instanceof ExportMetricsServiceRequest m) {
          for (ResourceMetrics r : m.getResourceMetricsList()) {
            latest = r.getResource();
          }
        } else if (a.request() instanceof ExportTraceServiceRequest t) {
          for (ResourceSpans r : t.getResourceSpansList()) {
            latest = r.getResource();
          }
        }
      }
      return latest == null ? Map.of() : attributes(latest.getAttributesList());
    }

    /** OTLP attributes as a map of Java values: String, Boolean, Long, Double, List or Map. */
    public static Map<String, Object> attributes(List<KeyValue> keyValues) {
      Map<String, Object> map = new LinkedHashMap<>();
      for (KeyValue kv : keyValues) {
        map.put(kv.getKey(), value(kv.getValue()));
      }
      return map;
    }

    /** A summary for failure messages: counts, resource, the latest point of every series, span names. */
    @Override
    public String toString() {
      Map<String, Long> signals =
          accepted.stream()
              .collect(Collectors.groupingBy(a -> signal(a.request()), TreeMap::new, Collectors.counting()));
      StringBuilder out = new StringBuilder();
      out.append("accepted ").append(accepted.size()).append(" export requests ").append(signals);
      out.append(" and rejected ").append(rejected).append(" while down");
      if (accepted.isEmpty()) {
        return out.toString();
      }
      out.append("\nresource: ").append(resourceAttributes());
      Map<String, String> series = new TreeMap<>();
      for (ExportMetricsServiceRequest request : metricsRequests()) {
        for (ResourceMetrics r : request.getResourceMetricsList()) {
          for (ScopeMetrics s : r.getScopeMetricsList()) {
            for (Metric m : s.getMetricsList()) {
              describe(m, series);
            }
          }
        }
      }
      out.append("\nmetrics, the latest point of each series:");
      series.values().stream().limit(DESCRIBED_SERIES).forEach(line -> out.append("\n  ").append(line));
      if (series.size() > DESCRIBED_SERIES) {
        out.append("\n  … and ").append(series.size() - DESCRIBED_SERIES).append(" more series");
      }
      Map<String, Long> spanNames =
          traceRequests().stream()
              .flatMap(t -> t.getResourceSpansList().stream())
              .flatMap(r -> r.getScopeSpansList().stream())
              .flatMap(s -> s.getSpansList().stream())
              .collect(Collectors.groupingBy(Span::getName, TreeMap::new, Collectors.counting()));
      out.append("\nspans by name: ").append(spanNames);
      return out.toString();
    }

    private <P> Optional<P> latest(
        String metric,
        Metric.DataCase kind,
        Map<String, ?> wanted,
        Function<Metric, List<P>> pointsOf,
        Function<P, List<KeyValue>> attributesOf,
        ToLongFunction<P> timeOf) {
      // The latest point of each series whose attributes include the wanted ones; retries may deliver out of order.
      Map<Map<String, Object>, P> latestBySeries = new LinkedHashMap<>();
      for (ExportMetricsServiceRequest request : metricsRequests()) {
        for (ResourceMetrics r : request.getResourceMetricsList()) {
          for (ScopeMetrics s : r.getScopeMetricsList()) {
            for (Metric m : s.getMetricsList()) {
              if (!m.getName().equals(metric)) {
                continue;
              }
              if (m.getDataCase() != kind) {
                throw new IllegalStateException(metric + " is a " + m.getDataCase() + ", not a " + kind);
              }
              for (P point : pointsOf.apply(m)) {
                Map<String, Object> attributes = attributes(attributesOf.apply(point));
                if (includes(attributes, wanted)) {
                  latestBySeries.merge(attributes, point, (a, b) -> timeOf.applyAsLong(b) >= timeOf.applyAsLong(a) ? b : a);
                }
              }
            }
          }
        }
      }
      if (latestBySeries.size() > 1) {
        throw new IllegalStateException(
            metric + " " + wanted + " matches " + latestBySeries.size() + " series, name more attributes: "
                + latestBySeries.keySet());
      }
      return latestBySeries.values().stream().findFirst();
    }

    private static boolean includes(Map<String, Object> attributes, Map<String, ?> wanted) {
      return wanted.entrySet().stream()
          .allMatch(w -> attributes.containsKey(w.getKey())
              && String.valueOf(attributes.get(w.getKey())).equals(String.valueOf(w.getValue())));
    }

    private static void describe(Metric m, Map<String, String> series) {
      switch (m.getDataCase()) {
        case SUM -> m.getSum().getDataPointsList().forEach(p -> series.put(
            m.getName() + attributes(p.getAttributesList()),
            m.getName() + " sum " + temporality(m.getSum().getAggregationTemporality()) + " "
                + attributes(p.getAttributesList()) + " = " + value(p)));
        case GAUGE -> m.getGauge().getDataPointsList().forEach(p -> series.put(
            m.getName() + attributes(p.getAttributesList()),
            m.getName() + " gauge " + attributes(p.getAttributesList()) + " = " + value(p)));
        case HISTOGRAM -> m.getHistogram().getDataPointsList().forEach(p -> series.put(
            m.getName() + attributes(p.getAttributesList()),
            m.getName() + " histogram " + temporality(m.getHistogram().getAggregationTemporality()) + " "
                + attributes(p.getAttributesList()) + " count " + p.getCount() + " sum " + p.getSum()));
        default -> series.put(m.getName(), m.getName() + " " + m.getDataCase().name().toLowerCase(Locale.ROOT));
      }
    }

    private static String temporality(AggregationTemporality t) {
      return t.name().replace("AGGREGATION_TEMPORALITY_", "").toLowerCase(Locale.ROOT);
    }

    private static String signal(Message request) {
      if (request instanceof ExportMetricsServiceRequest) {
        return "metrics";
      }
      return request instanceof ExportTraceServiceRequest ? "traces" : "logs";
    }

    private <R> List<R> requests(Class<R> type) {
      return accepted.stream().map(Accepted::request).filter(type::isInstance).map(type::cast).toList();
    }

    private static double value(NumberDataPoint p) {
      return p.getValueCase() == NumberDataPoint.ValueCase.AS_INT ? p.getAsInt() : p.getAsDouble();
    }

    private static Object value(AnyValue v) {
      return switch (v.getValueCase()) {
        case STRING_VALUE -> v.getStringValue();
        case BOOL_VALUE -> v.getBoolValue();
        case INT_VALUE -> v.getIntValue();
        case DOUBLE_VALUE -> v.getDoubleValue();
        case ARRAY_VALUE -> v.getArrayValue().getValuesList().stream().map(Received::value).toList();
        case KVLIST_VALUE -> attributes(v.getKvlistValue().getValuesList());
        case BYTES_VALUE -> v.getBytesValue().toByteArray();
        default -> "";
      };
    }
  }

  /** Where the receiver listens; stop and listen again on the same port model a collector going down and up. */
  private interface Transport {
    /** Listens on {@code port} (0: a free one) and returns the port. */
    int listen(int port) throws IOException;

    void stop();
  }

  private final class GrpcTransport implements Transport {
    private Server server;

    @Override
    public int listen(int port) throws IOException {
      ServerInterceptor headers =
          new ServerInterceptor() {
            @Override
            public <Q, R> ServerCall.Listener<Q> interceptCall(
                ServerCall<Q, R> call, Metadata metadata, ServerCallHandler<Q, R> next) {
              return Contexts.interceptCall(Context.current().withValue(HEADERS, text(metadata)), call, metadata, next);
            }
          };
      NettyServerBuilder builder = NettyServerBuilder.forAddress(new InetSocketAddress(LOOPBACK, port)).executor(handlers);
      for (BindableService service : List.of(new MetricsService(), new TraceService(), new LogsService())) {
        builder.addService(ServerInterceptors.intercept(service, headers));
      }
      server = builder.build().start();
      return server.getPort();
    }

    @Override
    public void stop() {
      server.shutdownNow();
      try {
        server.awaitTermination(5, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }

    private <R> void answer(Message request, StreamObserver<R> response, R ok) {
      if (accept(request, HEADERS.get())) {
        response.onNext(ok);
        response.onCompleted();
      } else {
        response.onError(Status.UNAVAILABLE.withDescription("the test's OTLP receiver is down").asRuntimeException());
      }
    }

    private static Map<String, String> text(Metadata metadata) {
      Map<String, String> map = new TreeMap<>();
      for (String key : metadata.keys()) {
        if (!key.endsWith(Metadata.BINARY_HEADER_SUFFIX)) {
          Iterable<String> values = metadata.getAll(Metadata.Key.of(key, Metadata.ASCII_STRING_MARSHALLER));
          map.put(key.toLowerCase(Locale.ROOT), String.join(",", values));
        }
      }
      return map;
    }

    private final class MetricsService extends MetricsServiceGrpc.MetricsServiceImplBase {
      @Override
      public void export(ExportMetricsServiceRequest request, StreamObserver<ExportMetricsServiceResponse> response) {
        answer(request, response, ExportMetricsServiceResponse.getDefaultInstance());
      }
    }

    private final class TraceService extends TraceServiceGrpc.TraceServiceImplBase {
      @Override
      public void export(ExportTraceServiceRequest request, StreamObserver<ExportTraceServiceResponse> response) {
        answer(request, response, ExportTraceServiceResponse.getDefaultInstance());
      }
    }

    private final class LogsService extends LogsServiceGrpc.LogsServiceImplBase {
      @Override
      public void export(ExportLogsServiceRequest request, StreamObserver<ExportLogsServiceResponse> response) {
        answer(request, response, ExportLogsServiceResponse.getDefaultInstance());
      }
    }
  }

  private final class HttpTransport implements Transport {
    private HttpServer server;

    @Override
    public int listen(int port) throws IOException {
      server = HttpServer.create(new InetSocketAddress(LOOPBACK, port), 0);
      server.setExecutor(handlers);
      server.createContext("/", this::handle);
      server.start();
      return server.getAddress().getPort();
    }

    @Override
    public void stop() {
      server.stop(0);
    }

    private void handle(HttpExchange exchange) throws IOException {
      try (exchange) {
        byte[] body = exchange.getRequestBody().readAllBytes();
        String path = exchange.getRequestURI().getPath();
        String type = exchange.getRequestHeaders().getFirst("Content-Type");
        if (!exchange.getRequestMethod().equals("POST")) {
          respond(exchange, 405, new byte[0]);
          return;
        }
        if (!List.of("/v1/metrics", "/v1/traces", "/v1/logs").contains(path)) {
          respond(exchange, 404, new byte[0]);
          return;
        }
        if (type == null || !type.startsWith("application/x-protobuf")) {
          respond(exchange, 415, new byte[0]); // OTLP/JSON is not spoken here
          return;
        }
        if ("gzip".equalsIgnoreCase(exchange.getRequestHeaders().getFirst("Content-Encoding"))) {
          try (InputStream in = new GZIPInputStream(new ByteArrayInputStream(body))) {
            body = in.readAllBytes();
          }
        }
        Message request;
        Message ok;
        try {
          switch (path) {
            case "/v1/metrics" -> {
              request = ExportMetricsServiceRequest.parseFrom(body);
              ok = ExportMetricsServiceResponse.getDefaultInstance();
            }
            case "/v1/traces" -> {
              request = ExportTraceServiceRequest.parseFrom(body);
              ok = ExportTraceServiceResponse.getDefaultInstance();
            }
            default -> {
              request = ExportLogsServiceRequest.parseFrom(body);
              ok = ExportLogsServiceResponse.getDefaultInstance();
            }
          }
        } catch (InvalidProtocolBufferException e) {
          respond(exchange, 400, new byte[0]);
          return;
        }
        if (accept(request, text(exchange))) {
          exchange.getResponseHeaders().set("Content-Type", "application/x-protobuf");
          respond(exchange, 200, ok.toByteArray());
        } else {
          respond(exchange, 503, new byte[0]);
        }
      }
    }

    private static Map<String, String> text(HttpExchange exchange) {
      Map<String, String> map = new TreeMap<>();
      exchange.getRequestHeaders().forEach((name, values) -> map.put(name.toLowerCase(Locale.ROOT), String.join(",", values)));
      return map;
    }

    private static void respond(HttpExchange exchange, int status, byte[] body) throws IOException {
      // An empty body must be announced as -1 (Content-Length: 0); 0 would mean chunked.
      exchange.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
      if (body.length > 0) {
        try (OutputStream out = exchange.getResponseBody()) {
          out.write(body);
        }
      }
    }
  }
}
