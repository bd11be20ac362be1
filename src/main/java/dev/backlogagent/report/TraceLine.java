package dev.backlogagent.report;

import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonPropertyOrder;
import dev.backlogagent.decode.AddressFamily;

/**
 * One line of {@code backlog-agent trace}, one small record per kind of line: for JSON, its fields
 * (absent ones left out; {@code type} says which kind); for a person, {@link #text()}. The schema is in
 * README.md (trace) and docs/diagnosis.md (the diagnosis lines).
 */
public sealed interface TraceLine {
  String time();

  @JsonProperty("type")
  String type();

  @JsonIgnore
  String text();

  /** Where a line is: the listener (or endpoint) and the process holding it; any part may be unknown. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  record Where(Long netns, AddressFamily family, String address, Integer port, Integer pid, String comm) {
    static final Where NOWHERE = new Where(null, null, null, null, null, null);
  }

  /** A listen() call. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  @JsonPropertyOrder({"time", "type", "netns", "family", "address", "port", "pid", "comm"})
  record Listen(String time, @com.fasterxml.jackson.annotation.JsonUnwrapped Where where, long requestedBacklog, long backlog,
      Integer somaxconn, boolean truncated, String text) implements TraceLine {
    public String type() {
      return "listen";
    }
  }

  /** Resets sent from one endpoint in one state for one reason during an interval. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  @JsonPropertyOrder({"time", "type", "netns", "family", "address", "port", "pid", "comm"})
  record Reset(String time, @com.fasterxml.jackson.annotation.JsonUnwrapped Where where, String reason, String state,
      long count, String text) implements TraceLine {
    public String type() {
      return "reset";
    }
  }

  /** A connection that waited long in the accept queue. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  @JsonPropertyOrder({"time", "type", "netns", "family", "address", "port", "pid", "comm"})
  record SlowAccept(String time, @com.fasterxml.jackson.annotation.JsonUnwrapped Where where, double waitMs, long queue,
      long backlog, String text) implements TraceLine {
    public String type() {
      return "slow_accept";
    }
  }

  /** The kprobe tier's first refusal of a burst. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  @JsonPropertyOrder({"time", "type", "netns", "family", "address", "port", "pid", "comm"})
  record OverflowStart(String time, @com.fasterxml.jackson.annotation.JsonUnwrapped Where where, String reason, long queue,
      long backlog, Integer syncookies, String text) implements TraceLine {
    public String type() {
      return "overflow_start";
    }
  }

  /** Accept-queue overflow: SYNs and third ACKs dropped, and what the application did about it. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  @JsonPropertyOrder({"time", "type", "netns", "family", "address", "port", "pid", "comm"})
  record AcceptQueueOverflow(String time, @com.fasterxml.jackson.annotation.JsonUnwrapped Where where, long drops, Long queue,
      Long queuePeak, Long backlog, Long requestedBacklog, Integer somaxconn, String pace, Long accepts, String text) implements TraceLine {
    public String type() {
      return "accept_queue_overflow";
    }
  }

  /** SYNs dropped at the SYN side: {@code syn_queue_overflow}, {@code syn_dropped} or {@code unexplained_drops}. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  @JsonPropertyOrder({"time", "type", "netns", "family", "address", "port", "pid", "comm"})
  record SynDrops(String time, String type, @com.fasterxml.jackson.annotation.JsonUnwrapped Where where, long drops, Long backlog,
      Integer syncookies, Boolean shared, String text) implements TraceLine {}

  /** SYN cookies sent, by a listener or (no address) by its namespace. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  @JsonPropertyOrder({"time", "type", "netns", "family", "address", "port", "pid", "comm"})
  record Syncookies(String time, @com.fasterxml.jackson.annotation.JsonUnwrapped Where where, long sent, Integer syncookies,
      String text) implements TraceLine {
    public String type() {
      return "syncookies";
    }
  }

  /** SYN-ACKs retransmitted. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  @JsonPropertyOrder({"time", "type", "netns", "family", "address", "port", "pid", "comm"})
  record SynackRetransmit(String time, @com.fasterxml.jackson.annotation.JsonUnwrapped Where where, long count, String text)
      implements TraceLine {
    public String type() {
      return "synack_retransmit";
    }
  }

  /** What the diagnosis found in a namespace but cannot pin on one listener. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  @JsonPropertyOrder({"time", "type", "netns"})
  record NamespaceFinding(String time, long netns, String kind, long count, java.util.List<Integer> ports, String text)
      implements TraceLine {
    public String type() {
      return "netns_finding";
    }
  }

  /** TCP state transitions over an interval (with --states). */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  @JsonPropertyOrder({"time", "type"})
  record State(String time, String from, String to, long count, String text) implements TraceLine {
    public String type() {
      return "state";
    }
  }
}
