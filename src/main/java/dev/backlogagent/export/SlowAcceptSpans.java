package dev.backlogagent.export;

import dev.backlogagent.decode.TraceEvent;
import dev.backlogagent.listener.Listener;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.Tracer;
import java.util.concurrent.TimeUnit;

/**
 * One span per slow accept the kernel reported (it filters by the threshold and rate-limits per listener):
 * the span starts when the handshake completed and ends when accept() returned, so an operator sees the
 * wait itself on a timeline.
 */
public final class SlowAcceptSpans {
  public static final String SPAN_NAME = "tcp.accept.slow";
  static final AttributeKey<Double> WAIT = AttributeKey.doubleKey("tcp.listen.accept.wait");
  static final AttributeKey<Long> QUEUE = AttributeKey.longKey("tcp.listen.queue.size");
  static final AttributeKey<Long> LIMIT = AttributeKey.longKey("tcp.listen.queue.limit");

  private volatile Tracer tracer;

  public SlowAcceptSpans(Tracer tracer) {
    this.tracer = tracer;
  }

  public void useTracer(Tracer next) {
    this.tracer = next;
  }

  /**
   * @param nowEpochNanos the wall clock now and {@code nowMonotonicNanos} System.nanoTime() at the same
   *     moment: the kernel stamps handshakes with CLOCK_MONOTONIC, which is what System.nanoTime() reads
   * @param listener the listener the event joins in the inventory, or null: the tracepoint tier names the
   *     connection's local address (127.0.0.1 for a listener bound to 0.0.0.0), and the span should carry
   *     the listener's, like every other per-listener signal
   */
  public void record(TraceEvent.SlowAccept e, Listener listener, long nowEpochNanos,
      long nowMonotonicNanos) {
    long handshakeEpochNanos = nowEpochNanos - (nowMonotonicNanos - e.handshakeNanos());
    long acceptEpochNanos = handshakeEpochNanos + TimeUnit.MICROSECONDS.toNanos(e.waitMicros());
    ListenerIdentity id = listener == null ? ListenerIdentity.of(e.key(), e.pid(), e.comm())
        : new ListenerIdentity(listener.key(), e.pid(), e.comm(), ListenerIdentity.of(listener).containerId());
    tracer.spanBuilder(SPAN_NAME)
        .setNoParent()
        .setSpanKind(SpanKind.INTERNAL)
        .setStartTimestamp(handshakeEpochNanos, TimeUnit.NANOSECONDS)
        .setAllAttributes(id.attributes())
        .setAttribute(WAIT, e.waitMicros() / 1e6)
        .setAttribute(QUEUE, e.queue())
        .setAttribute(LIMIT, e.backlog())
        .startSpan()
        .end(acceptEpochNanos, TimeUnit.NANOSECONDS);
  }
}
