package dev.backlogagent.report;

import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyOrder;

/**
 * One line of {@code backlog-agent trace}: for JSON, the fields of its type (absent ones left out); for a
 * person, {@link #text()}. The schema is documented in docs/trace.md.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
@JsonPropertyOrder({"time", "type", "netns", "family", "address", "port", "pid", "comm"})
public record TraceLine(
    String time,
    String type,
    Long netns,
    String family,
    String address,
    Integer port,
    Integer pid,
    String comm,
    Long requestedBacklog,
    Long backlog,
    Integer somaxconn,
    Boolean truncated,
    Long drops,
    Long queue,
    Integer syncookies,
    Long sent,
    Long count,
    String reason,
    String state,
    String from,
    String to,
    Double waitMs,
    @JsonIgnore String text) {}
