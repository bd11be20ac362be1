package dev.backlogagent.export;

import dev.backlogagent.decode.BpftraceRecord;
import dev.backlogagent.listener.ListenerInterval;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.sdk.common.InstrumentationScopeInfo;
import io.opentelemetry.sdk.metrics.data.AggregationTemporality;
import io.opentelemetry.sdk.metrics.data.Data;
import io.opentelemetry.sdk.metrics.data.HistogramData;
import io.opentelemetry.sdk.metrics.data.HistogramPointData;
import io.opentelemetry.sdk.metrics.data.MetricData;
import io.opentelemetry.sdk.metrics.data.MetricDataType;
import io.opentelemetry.sdk.metrics.export.MetricProducer;
import io.opentelemetry.sdk.resources.Resource;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * The two per-listener histograms (accept-queue depth at each handshake, accept wait), kept by the agent in
 * the {@link ListenerBook} and handed to the SDK as finished data at each collection. The SDK keeps every
 * series a synchronous histogram has seen until it restarts, so a listener that closed for good would be
 * exported for ever; these series go when the book stops exporting their listener, like its counters.
 * Cumulative, whatever temporality an exporter prefers, since the agent keeps the totals.
 */
public final class ListenerHistograms implements MetricProducer {
  static final String QUEUE_DEPTH = "tcp.listen.queue.depth";
  static final String ACCEPT_WAIT = "tcp.listen.accept.wait";
  /** Accept-queue depth buckets: the kernel's power-of-two buckets, as upper bounds. */
  static final List<Double> DEPTH_BOUNDARIES = powersOfTwo(16).stream().map(Long::doubleValue).toList();
  /** Accept-wait buckets in seconds: 1 µs to about 67 s in powers of two. */
  static final List<Double> WAIT_BOUNDARIES = powersOfTwo(26).stream().map(us -> us / 1e6).toList();
  private static final InstrumentationScopeInfo SCOPE = InstrumentationScopeInfo.create(Telemetry.SCOPE);

  /** One endpoint's two histograms as of the last interval or inventory (immutable). */
  public record Endpoint(Attributes attributes, Cumulative queueDepth, Cumulative acceptWait) {}

  /**
   * A cumulative explicit-bucket histogram: bucket i counts the values in (bound i-1, bound i], the last one
   * those above every bound, as the SDK's own aggregation does.
   *
   * @param startEpochNanos when it began: when its endpoint was first seen at work
   */
  public record Cumulative(long startEpochNanos, List<Double> boundaries, List<Long> counts, long count, double sum,
      double min, double max) {

    static Cumulative empty(List<Double> boundaries, long startEpochNanos) {
      return new Cumulative(startEpochNanos, boundaries, Collections.nCopies(boundaries.size() + 1, 0L), 0, 0,
          Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY);
    }

    /**
     * With the kernel's buckets added, each bucket's count at the value {@code at} gives it (the kernel only
     * says how many fell between its min and max).
     */
    Cumulative plus(List<BpftraceRecord.Bucket> buckets, Function<BpftraceRecord.Bucket, Double> at) {
      long[] next = counts.stream().mapToLong(Long::longValue).toArray();
      long n = count;
      double s = sum;
      double lo = min;
      double hi = max;
      for (BpftraceRecord.Bucket b : buckets) {
        if (b.count() <= 0) {
          continue;
        }
        double value = at.apply(b);
        next[bucket(value)] += b.count();
        n += b.count();
        s += value * b.count();
        lo = Math.min(lo, value);
        hi = Math.max(hi, value);
      }
      return new Cumulative(startEpochNanos, boundaries, Arrays.stream(next).boxed().toList(), n, s, lo, hi);
    }

    private int bucket(double value) {
      for (int i = 0; i < boundaries.size(); i++) {
        if (value <= boundaries.get(i)) {
          return i;
        }
      }
      return boundaries.size();
    }

    HistogramPointData point(Attributes attributes, long epochNanos) {
      return HistogramPointData.create(startEpochNanos, epochNanos, attributes, sum, count > 0, min, count > 0, max,
          boundaries, counts);
    }
  }

  /** The depth at a handshake in a kernel bucket: its upper value, so that [4,7] at 7 lands in the (4,8] bucket. */
  static double depthOf(BpftraceRecord.Bucket b) {
    return b.max();
  }

  /** A wait in a kernel bucket of microseconds, in seconds: the middle of [min, max]. */
  static double waitOf(BpftraceRecord.Bucket b) {
    return (b.min() + b.max() + 1) / 2.0 / 1e6;
  }

  /** An endpoint's histograms with one interval's buckets added; {@code before} null for an endpoint new to them. */
  static Endpoint plus(Endpoint before, Attributes attributes, ListenerInterval li, long nowEpochNanos) {
    Cumulative depth = before == null ? Cumulative.empty(DEPTH_BOUNDARIES, nowEpochNanos) : before.queueDepth();
    Cumulative wait = before == null ? Cumulative.empty(WAIT_BOUNDARIES, nowEpochNanos) : before.acceptWait();
    return new Endpoint(attributes, depth.plus(li.queueDepths(), ListenerHistograms::depthOf),
        wait.plus(li.acceptWaitMicros(), ListenerHistograms::waitOf));
  }

  private final ListenerBook book;

  public ListenerHistograms(ListenerBook book) {
    this.book = book;
  }

  @Override
  public Collection<MetricData> produce(Resource resource) {
    long now = TimeUnit.MILLISECONDS.toNanos(System.currentTimeMillis());
    List<HistogramPointData> depths = new ArrayList<>();
    List<HistogramPointData> waits = new ArrayList<>();
    for (Endpoint e : book.histograms()) {
      if (e.queueDepth().count() > 0) {
        depths.add(e.queueDepth().point(e.attributes(), now));
      }
      if (e.acceptWait().count() > 0) {
        waits.add(e.acceptWait().point(e.attributes(), now));
      }
    }
    List<MetricData> out = new ArrayList<>(2);
    if (!depths.isEmpty()) {
      out.add(new Histogram(resource, QUEUE_DEPTH, "The accept-queue length at each completed handshake.", "{connection}",
          HistogramData.create(AggregationTemporality.CUMULATIVE, depths)));
    }
    if (!waits.isEmpty()) {
      out.add(new Histogram(resource, ACCEPT_WAIT, "How long connections waited in the accept queue, from the handshake to accept().",
          "s", HistogramData.create(AggregationTemporality.CUMULATIVE, waits)));
    }
    return out;
  }

  /** One histogram metric as the SDK's readers and exporters take it. */
  private record Histogram(Resource resource, String name, String description, String unit, HistogramData data)
      implements MetricData {
    @Override
    public Resource getResource() {
      return resource;
    }

    @Override
    public InstrumentationScopeInfo getInstrumentationScopeInfo() {
      return SCOPE;
    }

    @Override
    public String getName() {
      return name;
    }

    @Override
    public String getDescription() {
      return description;
    }

    @Override
    public String getUnit() {
      return unit;
    }

    @Override
    public MetricDataType getType() {
      return MetricDataType.HISTOGRAM;
    }

    @Override
    public Data<?> getData() {
      return data;
    }
  }

  /** 0, then 1, 2, 4 … 2^top. */
  private static List<Long> powersOfTwo(int top) {
    List<Long> bounds = new ArrayList<>();
    bounds.add(0L);
    for (int e = 0; e <= top; e++) {
      bounds.add(1L << e);
    }
    return List.copyOf(bounds);
  }
}
