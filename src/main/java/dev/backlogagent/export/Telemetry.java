package dev.backlogagent.export;

import dev.backlogagent.config.AgentConfig;
import io.opentelemetry.api.metrics.Meter;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.exporter.prometheus.PrometheusHttpServer;
import io.opentelemetry.exporter.prometheus.PrometheusHttpServerBuilder;
import io.opentelemetry.sdk.OpenTelemetrySdk;
import io.opentelemetry.sdk.metrics.export.MetricReader;
import io.opentelemetry.sdk.autoconfigure.AutoConfiguredOpenTelemetrySdk;
import io.opentelemetry.sdk.autoconfigure.spi.ConfigProperties;
import io.opentelemetry.sdk.autoconfigure.spi.ConfigurationException;
import io.opentelemetry.sdk.common.CompletableResultCode;
import io.opentelemetry.sdk.metrics.export.MetricProducer;
import io.opentelemetry.sdk.resources.Resource;
import io.opentelemetry.api.common.AttributeKey;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

/**
 * The OpenTelemetry SDK as the daemon runs it, built by the SDK's own autoconfiguration so that every
 * standard OTEL_* variable works (endpoint, protocol, headers, TLS, resource attributes, service name,
 * export interval). The config file's exporters section goes on top: what the file sets wins over the
 * environment, what it leaves out falls back to the environment, then to the defaults: a Prometheus
 * endpoint on 127.0.0.1:9464, and OTLP export only once an endpoint is configured.
 */
public final class Telemetry implements AutoCloseable {
  public static final String SCOPE = "dev.backlogagent";
  private static final AttributeKey<String> SERVICE_NAME = AttributeKey.stringKey("service.name");
  private static final String ENDPOINT = "otel.exporter.otlp.endpoint";

  private final OpenTelemetrySdk sdk;
  private final String description;
  private final boolean otlp;

  private Telemetry(OpenTelemetrySdk sdk, String description, boolean otlp) {
    this.sdk = sdk;
    this.description = description;
    this.otlp = otlp;
  }

  /** Thrown when the SDK refuses its configuration (a bad OTEL_* value, a Prometheus port in use). */
  public static final class StartException extends Exception {
    private final boolean badConfiguration;

    public StartException(String message, boolean badConfiguration) {
      super(message);
      this.badConfiguration = badConfiguration;
    }

    /** True when a setting is wrong (an OTEL_* value), false when the host is (a port in use). */
    public boolean badConfiguration() {
      return badConfiguration;
    }
  }

  /**
   * Starts the SDK with the exporters; every metric reader collects {@code histograms} with the instruments'
   * data.
   */
  public static Telemetry start(AgentConfig.Exporters exporters, ExportHealth health, int cardinalityLimit,
      MetricProducer histograms) throws StartException {
    String[] described = new String[1];
    boolean[] otlpOn = new boolean[1];
    try {
      OpenTelemetrySdk sdk = AutoConfiguredOpenTelemetrySdk.builder()
          .disableShutdownHook() // the daemon flushes and shuts down itself, within systemd's stop timeout
          .addPropertiesSupplier(() -> defaults(cardinalityLimit))
          .addPropertiesCustomizer(props -> {
            Map<String, String> chosen = fromConfig(exporters, props);
            described[0] = describe(props, chosen);
            otlpOn[0] = otlpEnabled(props, chosen);
            return chosen;
          })
          .addMeterProviderCustomizer((meters, props) -> meters.registerMetricProducer(histograms))
          .addMetricReaderCustomizer((reader, props) -> reader instanceof PrometheusHttpServer p ? sliced(p) : reader)
          .addMetricExporterCustomizer((exporter, props) -> health.watch(exporter))
          .addSpanExporterCustomizer((exporter, props) -> health.watch(exporter))
          .addResourceCustomizer(Telemetry::nameService)
          .build()
          .getOpenTelemetrySdk();
      return new Telemetry(sdk, described[0], otlpOn[0]);
    } catch (ConfigurationException | IllegalStateException | java.io.UncheckedIOException e) {
      Throwable root = e;
      while (root.getCause() != null) {
        root = root.getCause();
      }
      if (root instanceof java.net.BindException || root instanceof java.io.IOException) {
        // The Prometheus exporter binds its port while the SDK is built: a port in use ends up here.
        AgentConfig.Prometheus p = exporters.prometheus();
        throw new StartException("the Prometheus endpoint " + p.host() + ":" + p.port() + " cannot listen: "
            + root.getMessage(), false);
      }
      throw new StartException("OpenTelemetry: " + e.getMessage()
          + (root == e ? "" : " (" + root.getMessage() + ")"), e instanceof ConfigurationException);
    }
  }

  /**
   * The autoconfigured Prometheus endpoint, rebuilt with the same settings and {@link SlicedResponses}: the
   * autoconfiguration offers no other way in. The first one is stopped first, to free its port.
   */
  private static MetricReader sliced(PrometheusHttpServer autoconfigured) {
    PrometheusHttpServerBuilder builder = autoconfigured.toBuilder();
    autoconfigured.shutdown().join(5, TimeUnit.SECONDS);
    return builder.setAuthenticator(new SlicedResponses()).build();
  }

  /** Our defaults; any OTEL_* variable or system property overrides them. */
  private static Map<String, String> defaults(int cardinalityLimit) {
    Map<String, String> d = new HashMap<>();
    d.put("otel.logs.exporter", "none");
    d.put("otel.metrics.exemplar.filter", "always_off"); // no trace context on our metrics: save the memory
    d.put("otel.java.metrics.cardinality.limit", Integer.toString(cardinalityLimit));
    // The agent's own pid and command line would only be confused with the listeners' process.* attributes.
    d.put("otel.java.disabled.resource.providers", String.join(",",
        "io.opentelemetry.instrumentation.resources.ProcessResourceProvider",
        "io.opentelemetry.instrumentation.resources.ProcessRuntimeResourceProvider"));
    return d;
  }

  /** What the config file sets (winning over the environment), and which exporters run. */
  static Map<String, String> fromConfig(AgentConfig.Exporters exporters, ConfigProperties props) {
    Map<String, String> chosen = new HashMap<>();
    AgentConfig.Otlp o = exporters.otlp();
    if (o.hasEndpoint()) {
      chosen.put(ENDPOINT, o.endpoint());
    }
    if (o.protocol() != null) {
      chosen.put("otel.exporter.otlp.protocol", o.protocol());
    }
    if (!o.headers().isEmpty()) {
      chosen.put("otel.exporter.otlp.headers", o.headers().entrySet().stream()
          .map(e -> e.getKey() + "=" + e.getValue()).sorted().collect(Collectors.joining(",")));
    }
    if (o.metricInterval() != null) {
      chosen.put("otel.metric.export.interval", Long.toString(o.metricInterval().toMillis()));
    }
    if (o.timeout() != null) {
      chosen.put("otel.exporter.otlp.timeout", Long.toString(o.timeout().toMillis()));
    }
    if (o.compression() != null) {
      chosen.put("otel.exporter.otlp.compression", o.compression());
    }
    if (o.certificate() != null) {
      chosen.put("otel.exporter.otlp.certificate", o.certificate().toString());
    }
    if (o.clientKey() != null) {
      chosen.put("otel.exporter.otlp.client.key", o.clientKey().toString());
    }
    if (o.clientCertificate() != null) {
      chosen.put("otel.exporter.otlp.client.certificate", o.clientCertificate().toString());
    }
    AgentConfig.Prometheus p = exporters.prometheus();
    chosen.put("otel.exporter.prometheus.host", p.host());
    chosen.put("otel.exporter.prometheus.port", Integer.toString(p.port()));

    boolean otlp = o.hasEndpoint() || props.getString(ENDPOINT) != null
        || props.getString("otel.exporter.otlp.metrics.endpoint") != null;
    boolean tracesEndpoint = o.hasEndpoint() || props.getString(ENDPOINT) != null
        || props.getString("otel.exporter.otlp.traces.endpoint") != null;
    if (props.getString("otel.metrics.exporter") == null) {
      List<String> metrics = new ArrayList<>();
      if (p.enabled()) {
        metrics.add("prometheus");
      }
      if (otlp) {
        metrics.add("otlp");
      }
      chosen.put("otel.metrics.exporter", metrics.isEmpty() ? "none" : String.join(",", metrics));
    }
    if (props.getString("otel.traces.exporter") == null) {
      chosen.put("otel.traces.exporter", tracesEndpoint ? "otlp" : "none");
    }
    return chosen;
  }

  private static boolean otlpEnabled(ConfigProperties props, Map<String, String> chosen) {
    String metrics = chosen.getOrDefault("otel.metrics.exporter", props.getString("otel.metrics.exporter", ""));
    String traces = chosen.getOrDefault("otel.traces.exporter", props.getString("otel.traces.exporter", ""));
    return metrics.contains("otlp") || traces.contains("otlp");
  }

  private static String describe(ConfigProperties props, Map<String, String> chosen) {
    List<String> parts = new ArrayList<>();
    String metrics = chosen.getOrDefault("otel.metrics.exporter", props.getString("otel.metrics.exporter", "none"));
    if (metrics.contains("prometheus")) {
      parts.add("Prometheus on " + chosen.getOrDefault("otel.exporter.prometheus.host", "0.0.0.0") + ":"
          + chosen.getOrDefault("otel.exporter.prometheus.port", "9464"));
    }
    if (otlpEnabled(props, chosen)) {
      String endpoint = chosen.getOrDefault(ENDPOINT, props.getString(ENDPOINT, "the default endpoint"));
      String protocol = chosen.getOrDefault("otel.exporter.otlp.protocol", props.getString("otel.exporter.otlp.protocol", "grpc"));
      parts.add("OTLP " + protocol + " to " + endpoint);
    }
    return parts.isEmpty() ? "no exporter" : String.join(", ", parts);
  }

  private static Resource nameService(Resource resource, ConfigProperties props) {
    String name = resource.getAttribute(SERVICE_NAME);
    if (name == null || name.startsWith("unknown_service")) {
      return resource.merge(Resource.create(io.opentelemetry.api.common.Attributes.of(SERVICE_NAME, "backlog-agent")));
    }
    return resource;
  }

  public Meter meter() {
    return sdk.getMeter(SCOPE);
  }

  public Tracer tracer() {
    return sdk.getTracer(SCOPE);
  }

  /** Which exporters run and where, for the start line. */
  public String description() {
    return description;
  }

  public boolean otlp() {
    return otlp;
  }

  /** Pushes what is pending (metrics and spans) and waits for it, at most {@code millis}. */
  public boolean flush(long millis) {
    CompletableResultCode metrics = sdk.getSdkMeterProvider().forceFlush();
    CompletableResultCode traces = sdk.getSdkTracerProvider().forceFlush();
    return CompletableResultCode.ofAll(List.of(metrics, traces)).join(millis, TimeUnit.MILLISECONDS).isSuccess();
  }

  /**
   * Flushes a last export and stops the exporters (and the Prometheus endpoint), taking at most
   * {@code millis}. The SDK's shutdown blocks its caller (the metric reader waits up to 5 s for its
   * scheduler, then up to 5 s for the last export, which a collector that never answers makes the full
   * 10 s), so it runs on a thread of its own that is left behind when the time is up.
   */
  public void close(long millis) {
    Thread shutdown = new Thread(() -> sdk.shutdown().join(millis, TimeUnit.MILLISECONDS), "otel-shutdown");
    shutdown.setDaemon(true);
    shutdown.start();
    try {
      shutdown.join(Math.max(1, millis));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  @Override
  public void close() {
    close(3000);
  }
}
