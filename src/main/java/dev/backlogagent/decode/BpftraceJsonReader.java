package dev.backlogagent.decode;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads one line of {@code bpftrace -f json} output into a {@link BpftraceRecord}. A line that is not
 * such a record is a {@link MalformedLineException}; the caller counts it and goes on.
 */
public final class BpftraceJsonReader {
  private final ObjectMapper mapper = new ObjectMapper();
  private final JsonFactory factory = mapper.getFactory();

  /** Thrown for a line that is not one of bpftrace's JSON records (truncated, garbled, or plain text). */
  public static final class MalformedLineException extends Exception {
    public MalformedLineException(String message) {
      super(message);
    }
  }

  public BpftraceRecord read(String line) throws MalformedLineException {
    String type = null;
    JsonNode data = null;
    try (JsonParser parser = factory.createParser(line)) {
      if (parser.nextToken() != JsonToken.START_OBJECT) {
        throw new MalformedLineException("not a JSON object");
      }
      while (parser.nextToken() == JsonToken.FIELD_NAME) {
        String field = parser.currentName();
        parser.nextToken();
        if ("type".equals(field)) {
          type = parser.getValueAsString();
        } else if ("data".equals(field)) {
          data = parser.readValueAsTree();
        } else {
          parser.skipChildren();
        }
      }
      if (parser.currentToken() != JsonToken.END_OBJECT || parser.nextToken() != null) {
        throw new MalformedLineException("trailing or unterminated content");
      }
    } catch (IOException e) {
      throw new MalformedLineException("bad JSON: " + firstLine(e.getMessage()));
    }
    if (type == null || data == null) {
      throw new MalformedLineException("no \"type\" and \"data\"");
    }
    return switch (type) {
      case "attached_probes" -> new BpftraceRecord.Attached(data.path("probes").asInt());
      case "printf" -> new BpftraceRecord.Printed(data.asText());
      case "lost_events" -> new BpftraceRecord.LostEvents(data.path("events").asLong(data.asLong()));
      case "map" -> mapDump(data);
      case "hist" -> histDump(data);
      default -> new BpftraceRecord.Other(type);
    };
  }

  private static BpftraceRecord.MapDump mapDump(JsonNode data) throws MalformedLineException {
    Map.Entry<String, JsonNode> map = single(data);
    Map<List<String>, Long> values = new LinkedHashMap<>();
    JsonNode body = map.getValue();
    if (body.isNumber()) {
      values.put(List.of(), body.asLong());
    } else if (body.isObject()) {
      for (Iterator<Map.Entry<String, JsonNode>> it = body.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> e = it.next();
        if (!e.getValue().isNumber()) {
          throw new MalformedLineException("map " + map.getKey() + " has a value that is not a number");
        }
        values.put(keys(e.getKey()), e.getValue().asLong());
      }
    } else {
      throw new MalformedLineException("map " + map.getKey() + " is neither a number nor an object");
    }
    return new BpftraceRecord.MapDump(map.getKey(), values);
  }

  private static BpftraceRecord.HistDump histDump(JsonNode data) throws MalformedLineException {
    Map.Entry<String, JsonNode> map = single(data);
    Map<List<String>, List<BpftraceRecord.Bucket>> buckets = new LinkedHashMap<>();
    JsonNode body = map.getValue();
    if (body.isArray()) {
      buckets.put(List.of(), buckets(map.getKey(), body));
    } else if (body.isObject()) {
      for (Iterator<Map.Entry<String, JsonNode>> it = body.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> e = it.next();
        buckets.put(keys(e.getKey()), buckets(map.getKey(), e.getValue()));
      }
    } else {
      throw new MalformedLineException("hist " + map.getKey() + " is neither a list nor an object");
    }
    return new BpftraceRecord.HistDump(map.getKey(), buckets);
  }

  private static List<BpftraceRecord.Bucket> buckets(String map, JsonNode list) throws MalformedLineException {
    if (!list.isArray()) {
      throw new MalformedLineException("hist " + map + " has a key whose buckets are not a list");
    }
    List<BpftraceRecord.Bucket> out = new ArrayList<>(list.size());
    for (JsonNode b : list) {
      long count = b.path("count").asLong();
      if (count > 0) {
        // The lowest and highest buckets of a hist() are open-ended: bpftrace leaves min or max out.
        out.add(new BpftraceRecord.Bucket(b.path("min").asLong(Long.MIN_VALUE), b.path("max").asLong(Long.MAX_VALUE), count));
      }
    }
    return out;
  }

  private static Map.Entry<String, JsonNode> single(JsonNode data) throws MalformedLineException {
    Iterator<Map.Entry<String, JsonNode>> it = data.fields();
    if (!it.hasNext()) {
      throw new MalformedLineException("a map record without a map");
    }
    return it.next();
  }

  private static List<String> keys(String joined) {
    return Arrays.asList(joined.split(",", -1));
  }

  private static String firstLine(String message) {
    if (message == null) {
      return "unreadable";
    }
    int newline = message.indexOf('\n');
    return newline < 0 ? message : message.substring(0, newline);
  }
}
