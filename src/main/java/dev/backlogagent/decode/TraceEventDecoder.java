package dev.backlogagent.decode;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.backlogagent.decode.TraceEvent.Counted;
import dev.backlogagent.decode.TraceEvent.Histogrammed;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Turns bpftrace records into {@link TraceEvent}s by the contract in the programs' headers. A record
 * that breaks the contract is an {@link UndecodableException} — counted by the caller, never fatal.
 * Maps it does not know (scratch maps printed at exit) are ignored.
 */
public final class TraceEventDecoder {
  private static final Map<String, Counted> COUNTS = Map.of(
      "@queue_peak", Counted.QUEUE_PEAK,
      "@synack_retransmits", Counted.SYNACK_RETRANSMITS,
      "@drops", Counted.DROPS,
      "@syn_refused", Counted.SYN_REFUSED,
      "@resets_suppressed", Counted.RESETS_SUPPRESSED,
      "@slow_accept_suppressed", Counted.SLOW_ACCEPTS_SUPPRESSED);
  private static final Map<String, Histogrammed> HISTOGRAMS = Map.of(
      "@queue_depth", Histogrammed.QUEUE_DEPTH,
      "@accept_wait_us", Histogrammed.ACCEPT_WAIT_MICROS,
      "@kaccept_wait_us", Histogrammed.ACCEPT_WAIT_MICROS);

  private final ObjectMapper mapper = new ObjectMapper();

  /** A record that does not follow the programs' contract. */
  public static final class UndecodableException extends Exception {
    public UndecodableException(String message) {
      super(message);
    }
  }

  public List<TraceEvent> decode(BpftraceRecord record) throws UndecodableException {
    if (record instanceof BpftraceRecord.Printed printed) {
      return List.of(event(printed.text()));
    }
    if (record instanceof BpftraceRecord.MapDump dump) {
      return counts(dump);
    }
    if (record instanceof BpftraceRecord.HistDump hist) {
      return histograms(hist);
    }
    return List.of();
  }

  private TraceEvent event(String text) throws UndecodableException {
    JsonNode e;
    try {
      e = mapper.readTree(text);
    } catch (JsonProcessingException ex) {
      throw new UndecodableException("event is not JSON: " + abbreviate(text));
    }
    if (e == null || !e.isObject()) {
      throw new UndecodableException("event is not a JSON object: " + abbreviate(text));
    }
    String type = e.path("ev").asText("");
    return switch (type) {
      case "listen" -> new TraceEvent.ListenCall(key(e), e.path("pid").asInt(), e.path("comm").asText(null),
          number(e, "requested_backlog"), number(e, "backlog"));
      case "reset" -> new TraceEvent.ResetSent(key(e), e.path("state").asInt(), number(e, "reason"));
      case "slow_accept" -> new TraceEvent.SlowAccept(key(e), e.path("pid").asInt(0), e.path("comm").asText(null),
          e.path("handshake_ns").asLong(0), number(e, "wait_us"),
          e.has("queue_ahead") ? e.path("queue_ahead").asLong() : e.path("queue").asLong(), e.path("backlog").asLong());
      case "overflow_start" -> new TraceEvent.OverflowStart(key(e), e.path("kind").asText(), number(e, "queue"),
          number(e, "backlog"), e.path("syncookies").asInt(-1));
      default -> throw new UndecodableException("unknown event type '" + type + "'");
    };
  }

  private static ListenerKey key(JsonNode e) throws UndecodableException {
    for (String field : new String[] {"netns", "family", "addr", "port"}) {
      if (!e.has(field)) {
        throw new UndecodableException("event without " + field + ": " + abbreviate(e.toString()));
      }
    }
    return new ListenerKey(e.get("netns").asLong(), AddressFamily.of(e.get("family").asInt()), e.get("addr").asText(), e.get("port").asInt());
  }

  private static long number(JsonNode e, String field) throws UndecodableException {
    JsonNode n = e.get(field);
    if (n == null || !n.isIntegralNumber() || !n.canConvertToLong()) {
      throw new UndecodableException("event field " + field + " missing or not a 64-bit whole number");
    }
    return n.asLong();
  }

  /** states.bt's keyless count of one transition, @states_OLD_NEW (see its header: a per-CPU array is cheaper). */
  private static final Pattern ONE_TRANSITION = Pattern.compile("@states_(\\d{1,2})_(\\d{1,2})");

  private static List<TraceEvent> counts(BpftraceRecord.MapDump dump) throws UndecodableException {
    Matcher one = ONE_TRANSITION.matcher(dump.map());
    if (one.matches()) {
      Long n = dump.values().get(List.of());
      if (dump.values().size() != 1 || n == null) {
        throw new UndecodableException(dump.map() + " is not a keyless count");
      }
      // Printed every interval, 0 included: a transition that did not happen is no event (and no series).
      return n == 0 ? List.of()
          : List.of(new TraceEvent.StateTransitions(Integer.parseInt(one.group(1)), Integer.parseInt(one.group(2)), n));
    }
    if ("@states".equals(dump.map())) {
      List<TraceEvent> out = new ArrayList<>();
      for (Map.Entry<List<String>, Long> e : dump.values().entrySet()) {
        if (e.getKey().size() != 2) {
          throw new UndecodableException("@states key is not (from,to): " + e.getKey());
        }
        out.add(new TraceEvent.StateTransitions(integer(e.getKey().get(0)), integer(e.getKey().get(1)), e.getValue()));
      }
      return out;
    }
    Counted what = COUNTS.get(dump.map());
    if (what == null) {
      return List.of();
    }
    List<TraceEvent> out = new ArrayList<>(dump.values().size());
    for (Map.Entry<List<String>, Long> e : dump.values().entrySet()) {
      List<String> k = e.getKey();
      if (k.size() < 4) {
        throw new UndecodableException(dump.map() + " key is not a listener key: " + k);
      }
      String detail = k.size() > 4 ? String.join(",", k.subList(4, k.size())) : null;
      out.add(new TraceEvent.ListenerCount(what, listenerKey(k), detail, e.getValue()));
    }
    return out;
  }

  private static List<TraceEvent> histograms(BpftraceRecord.HistDump hist) throws UndecodableException {
    Histogrammed what = HISTOGRAMS.get(hist.map());
    if (what == null) {
      return List.of();
    }
    List<TraceEvent> out = new ArrayList<>();
    for (Map.Entry<List<String>, List<BpftraceRecord.Bucket>> e : hist.buckets().entrySet()) {
      if (e.getKey().size() != 4) {
        throw new UndecodableException(hist.map() + " key is not a listener key: " + e.getKey());
      }
      ListenerKey key = listenerKey(e.getKey());
      out.add(new TraceEvent.ListenerHistogram(what, key, e.getValue()));
      if (what == Histogrammed.QUEUE_DEPTH) {
        handshakesOf(key, e.getValue(), out);
      }
    }
    return out;
  }

  /**
   * handshakes.bt prints no count of its own (each aggregation costs a map lookup and update per handshake):
   * the handshakes are the depth histogram's counts, and its highest non-empty bucket's low end is a floor
   * of the peak, exact for the buckets {0,0} and {1,1}; above 1 the program prints the peak in @queue_peak.
   */
  private static void handshakesOf(ListenerKey key, List<BpftraceRecord.Bucket> buckets, List<TraceEvent> out)
      throws UndecodableException {
    long handshakes = 0;
    long peakFloor = 0; // depths are never negative; a hist whose lowest bucket is open-ended has min Long.MIN_VALUE
    for (BpftraceRecord.Bucket b : buckets) {
      if (b.count() < 0) {
        throw new UndecodableException("@queue_depth bucket with a negative count: " + b);
      }
      try {
        handshakes = Math.addExact(handshakes, b.count());
      } catch (ArithmeticException overflow) {
        throw new UndecodableException("@queue_depth counts sum past 64 bits for " + key);
      }
      if (b.count() > 0) {
        peakFloor = Math.max(peakFloor, b.min());
      }
    }
    if (handshakes > 0) {
      out.add(new TraceEvent.ListenerCount(Counted.HANDSHAKES, key, null, handshakes));
      out.add(new TraceEvent.ListenerCount(Counted.QUEUE_PEAK, key, null, peakFloor));
    }
  }

  private static ListenerKey listenerKey(List<String> k) throws UndecodableException {
    return new ListenerKey(longValue(k.get(0)), AddressFamily.of(integer(k.get(1))), k.get(2), integer(k.get(3)));
  }

  private static int integer(String s) throws UndecodableException {
    long v = longValue(s);
    if (v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) {
      throw new UndecodableException("'" + s + "' is out of range");
    }
    return (int) v;
  }

  private static long longValue(String s) throws UndecodableException {
    try {
      return Long.parseLong(s.strip());
    } catch (NumberFormatException e) {
      throw new UndecodableException("'" + s + "' is not a number");
    }
  }

  private static String abbreviate(String s) {
    return s.length() > 160 ? s.substring(0, 160) + "…" : s;
  }
}
