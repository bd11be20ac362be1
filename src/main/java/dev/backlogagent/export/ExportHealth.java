package dev.backlogagent.export;

import io.opentelemetry.sdk.common.CompletableResultCode;
import io.opentelemetry.sdk.common.export.MemoryMode;
import io.opentelemetry.sdk.metrics.Aggregation;
import io.opentelemetry.sdk.metrics.InstrumentType;
import io.opentelemetry.sdk.metrics.data.AggregationTemporality;
import io.opentelemetry.sdk.metrics.data.MetricData;
import io.opentelemetry.sdk.metrics.export.MetricExporter;
import io.opentelemetry.sdk.trace.data.SpanData;
import io.opentelemetry.sdk.trace.export.SpanExporter;
import java.util.Collection;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Watches the OTLP exporters' results: when each signal last got through, how many exports failed, and
 * one log line when a signal starts failing and one when it recovers (not one per attempt: a collector
 * that is down for an hour must not fill the journal). Kept across SDK rebuilds.
 */
public final class ExportHealth {
  private static final System.Logger LOG = System.getLogger(ExportHealth.class.getName());

  private final Map<String, Long> lastSuccess = new ConcurrentHashMap<>();
  private final Map<String, AtomicLong> failures = new ConcurrentHashMap<>();
  private final Map<String, Long> failingSince = new ConcurrentHashMap<>();

  public MetricExporter watch(MetricExporter exporter) {
    return new Metrics(exporter);
  }

  public SpanExporter watch(SpanExporter exporter) {
    return new Spans(exporter);
  }

  /** Per signal, when an export last succeeded (epoch ms). */
  public Map<String, Long> lastSuccess() {
    return new TreeMap<>(lastSuccess);
  }

  public Map<String, Long> failures() {
    Map<String, Long> copy = new TreeMap<>();
    failures.forEach((k, v) -> copy.put(k, v.get()));
    return copy;
  }

  /** True while the last export of some signal failed. */
  public boolean failing() {
    return !failingSince.isEmpty();
  }

  private CompletableResultCode observe(String signal, CompletableResultCode result) {
    result.whenComplete(() -> {
      if (result.isSuccess()) {
        lastSuccess.put(signal, System.currentTimeMillis());
        Long since = failingSince.remove(signal);
        if (since != null) {
          LOG.log(System.Logger.Level.WARNING, "OTLP {0} export works again after {1} s of failures",
              signal, (System.currentTimeMillis() - since) / 1000);
        }
      } else {
        failures.computeIfAbsent(signal, k -> new AtomicLong()).incrementAndGet();
        if (failingSince.putIfAbsent(signal, System.currentTimeMillis()) == null) {
          Throwable why = result.getFailureThrowable();
          LOG.log(System.Logger.Level.WARNING, "OTLP {0} export failed{1}; the agent keeps counting and will send the totals "
              + "when the collector answers again", signal, why == null ? "" : " (" + why.getMessage() + ")");
        }
      }
    });
    return result;
  }

  private final class Metrics implements MetricExporter {
    private final MetricExporter delegate;

    Metrics(MetricExporter delegate) {
      this.delegate = delegate;
    }

    @Override
    public CompletableResultCode export(Collection<MetricData> metrics) {
      return observe("metrics", delegate.export(metrics));
    }

    @Override
    public CompletableResultCode flush() {
      return delegate.flush();
    }

    @Override
    public CompletableResultCode shutdown() {
      return delegate.shutdown();
    }

    @Override
    public AggregationTemporality getAggregationTemporality(InstrumentType instrumentType) {
      return delegate.getAggregationTemporality(instrumentType);
    }

    @Override
    public Aggregation getDefaultAggregation(InstrumentType instrumentType) {
      return delegate.getDefaultAggregation(instrumentType);
    }

    @Override
    public MemoryMode getMemoryMode() {
      return delegate.getMemoryMode();
    }

    @Override
    public String toString() {
      return delegate.toString();
    }
  }

  private final class Spans implements SpanExporter {
    private final SpanExporter delegate;

    Spans(SpanExporter delegate) {
      this.delegate = delegate;
    }

    @Override
    public CompletableResultCode export(Collection<SpanData> spans) {
      return observe("traces", delegate.export(spans));
    }

    @Override
    public CompletableResultCode flush() {
      return delegate.flush();
    }

    @Override
    public CompletableResultCode shutdown() {
      return delegate.shutdown();
    }

    @Override
    public String toString() {
      return delegate.toString();
    }
  }
}
