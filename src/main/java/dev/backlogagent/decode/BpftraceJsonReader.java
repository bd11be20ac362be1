package dev.backlogagent.decode;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads one line of {@code bpftrace -f json} output into a {@link BpftraceRecord}. A line that is not
 * such a record is a {@link MalformedLineException}; the caller counts it and goes on.
 *
 * <p>Map and histogram prints are decoded as they stream, never as a JSON tree (a tree costs some 30
 * times the line's size), and a print with more than {@link #MAX_KEYS} keys is refused: no child the
 * agent starts can have more (BPFTRACE_MAP_KEYS_MAX), so such a line is not one of ours.
 */
public final class BpftraceJsonReader {
  /** The most keys (histogram buckets, for a hist) one print may have: the agent's BPFTRACE_MAP_KEYS_MAX. */
  public static final int MAX_KEYS = 16384;
  /** A "data" before its "type" is decoded as a tree, which only a short line may cost. */
  private static final int TREE_LINE_LIMIT = 64 * 1024;

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
    BpftraceRecord record = null;
    JsonNode early = null;
    Map<String, String> helperError = null; // a helper_error's fields sit beside "type", with no "data"
    try (JsonParser parser = factory.createParser(line)) {
      if (parser.nextToken() != JsonToken.START_OBJECT) {
        throw new MalformedLineException("not a JSON object");
      }
      while (parser.nextToken() == JsonToken.FIELD_NAME) {
        String field = parser.currentName();
        JsonToken value = parser.nextToken();
        if ("type".equals(field)) {
          if (value == null || !value.isScalarValue()) {
            throw new MalformedLineException("\"type\" is not a string");
          }
          type = parser.getValueAsString();
        } else if ("data".equals(field) && type != null && record == null && early == null) {
          record = data(type, parser);
        } else if ("data".equals(field) && record == null && early == null) {
          if (line.length() > TREE_LINE_LIMIT) {
            throw new MalformedLineException("a long line whose \"data\" comes before its \"type\"");
          }
          early = parser.readValueAsTree();
        } else if (HELPER_ERROR_FIELDS.contains(field) && value != null && value.isScalarValue()) {
          if (helperError == null) {
            helperError = new HashMap<>();
          }
          helperError.put(field, parser.getValueAsString());
        } else {
          parser.skipChildren();
        }
      }
      if (parser.currentToken() != JsonToken.END_OBJECT || parser.nextToken() != null) {
        throw new MalformedLineException("trailing or unterminated content");
      }
      if (type != null && record == null && early != null) {
        try (JsonParser tree = early.traverse(mapper)) {
          tree.nextToken();
          record = data(type, tree);
        }
      }
    } catch (IOException e) {
      throw new MalformedLineException("bad JSON: " + firstLine(e.getMessage()));
    }
    if (record == null && "helper_error".equals(type)) {
      Map<String, String> f = helperError == null ? Map.of() : helperError;
      return new BpftraceRecord.HelperError(f.get("helper"), f.get("msg"), number(f.get("retcode")), number(f.get("line")),
          number(f.get("col")));
    }
    if (record == null) {
      throw new MalformedLineException("no \"type\" and \"data\"");
    }
    return record;
  }

  private static final Set<String> HELPER_ERROR_FIELDS = Set.of("helper", "msg", "retcode", "line", "col");

  private static long number(String text) {
    try {
      return text == null ? -1 : Long.parseLong(text);
    } catch (NumberFormatException e) {
      return -1;
    }
  }

  /** Decodes "data" of the given type; the parser is on its first token and is left on its last. */
  private BpftraceRecord data(String type, JsonParser p) throws IOException, MalformedLineException {
    return switch (type) {
      case "map" -> mapDump(p);
      case "hist" -> histDump(p);
      default -> small(type, p.readValueAsTree());
    };
  }

  private static BpftraceRecord small(String type, JsonNode data) throws MalformedLineException {
    if (data == null) {
      throw new MalformedLineException("no \"type\" and \"data\"");
    }
    return switch (type) {
      case "attached_probes" -> new BpftraceRecord.Attached(data.path("probes").asInt());
      case "printf" -> new BpftraceRecord.Printed(data.asText());
      case "lost_events" -> new BpftraceRecord.LostEvents(count(data.has("events") ? data.path("events") : data, "lost_events"));
      default -> new BpftraceRecord.Other(type);
    };
  }

  private static BpftraceRecord.MapDump mapDump(JsonParser p) throws IOException, MalformedLineException {
    String name = firstMap(p);
    Map<List<String>, Long> values = new LinkedHashMap<>();
    JsonToken body = p.currentToken();
    if (body == JsonToken.VALUE_NUMBER_INT || body == JsonToken.VALUE_NUMBER_FLOAT) {
      values.put(List.of(), count(p, name));
    } else if (body == JsonToken.START_OBJECT) {
      while (p.nextToken() == JsonToken.FIELD_NAME) {
        List<String> key = keys(p.currentName());
        JsonToken v = p.nextToken();
        if (v != JsonToken.VALUE_NUMBER_INT && v != JsonToken.VALUE_NUMBER_FLOAT) {
          throw new MalformedLineException("map " + name + " has a value that is not a number");
        }
        if (values.size() == MAX_KEYS) {
          throw new MalformedLineException("map " + name + " has more than " + MAX_KEYS + " keys");
        }
        values.put(key, count(p, name));
      }
    } else {
      throw new MalformedLineException("map " + name + " is neither a number nor an object");
    }
    skipOtherMaps(p);
    return new BpftraceRecord.MapDump(name, values);
  }

  private BpftraceRecord.HistDump histDump(JsonParser p) throws IOException, MalformedLineException {
    String name = firstMap(p);
    Map<List<String>, List<BpftraceRecord.Bucket>> buckets = new LinkedHashMap<>();
    int[] total = {0};
    JsonToken body = p.currentToken();
    if (body == JsonToken.START_ARRAY) {
      buckets.put(List.of(), buckets(name, p, total));
    } else if (body == JsonToken.START_OBJECT) {
      while (p.nextToken() == JsonToken.FIELD_NAME) {
        List<String> key = keys(p.currentName());
        p.nextToken();
        buckets.put(key, buckets(name, p, total));
      }
    } else {
      throw new MalformedLineException("hist " + name + " is neither a list nor an object");
    }
    skipOtherMaps(p);
    return new BpftraceRecord.HistDump(name, buckets);
  }

  private static List<BpftraceRecord.Bucket> buckets(String map, JsonParser p, int[] total)
      throws IOException, MalformedLineException {
    if (p.currentToken() != JsonToken.START_ARRAY) {
      throw new MalformedLineException("hist " + map + " has a key whose buckets are not a list");
    }
    List<BpftraceRecord.Bucket> out = new ArrayList<>();
    while (p.nextToken() != JsonToken.END_ARRAY) {
      if (p.currentToken() != JsonToken.START_OBJECT) {
        throw new MalformedLineException("hist " + map + " has a bucket that is not an object");
      }
      if (++total[0] > MAX_KEYS) {
        throw new MalformedLineException("hist " + map + " has more than " + MAX_KEYS + " buckets");
      }
      JsonNode b = p.readValueAsTree(); // one bucket: {"min": .., "max": .., "count": ..}
      long count = count(b.path("count"), map);
      if (count > 0) {
        // The lowest and highest buckets of a hist() are open-ended: bpftrace leaves min or max out.
        out.add(new BpftraceRecord.Bucket(bound(b, "min", Long.MIN_VALUE, map), bound(b, "max", Long.MAX_VALUE, map), count));
      }
    }
    return out;
  }

  /** Moves to the value of the first map in "data" and returns the map's name. */
  private static String firstMap(JsonParser p) throws IOException, MalformedLineException {
    if (p.currentToken() != JsonToken.START_OBJECT || p.nextToken() != JsonToken.FIELD_NAME) {
      throw new MalformedLineException("a map record without a map");
    }
    String name = p.currentName();
    p.nextToken();
    return name;
  }

  private static void skipOtherMaps(JsonParser p) throws IOException {
    while (p.nextToken() == JsonToken.FIELD_NAME) {
      p.nextToken();
      p.skipChildren();
    }
  }

  /** A count: a whole number that fits in 64 bits (a 26-digit "count" is not one a kernel map can hold). */
  private static long count(JsonParser p, String map) throws IOException, MalformedLineException {
    if (p.currentToken() != JsonToken.VALUE_NUMBER_INT || p.getNumberType() == JsonParser.NumberType.BIG_INTEGER) {
      throw new MalformedLineException("map " + map + " has a value that is not a 64-bit whole number: "
          + abbreviate(p.getText()));
    }
    return p.getLongValue();
  }

  private static long count(JsonNode n, String map) throws MalformedLineException {
    if (n.isMissingNode()) {
      return 0;
    }
    if (!n.isIntegralNumber() || !n.canConvertToLong()) {
      throw new MalformedLineException(map + " has a count that is not a 64-bit whole number: " + abbreviate(n.toString()));
    }
    return n.asLong();
  }

  private static long bound(JsonNode bucket, String field, long open, String map) throws MalformedLineException {
    JsonNode n = bucket.path(field);
    return n.isMissingNode() ? open : count(n, map);
  }

  private static List<String> keys(String joined) {
    return Arrays.asList(joined.split(",", -1));
  }

  private static String abbreviate(String s) {
    return s.length() > 40 ? s.substring(0, 40) + "…" : s;
  }

  private static String firstLine(String message) {
    if (message == null) {
      return "unreadable";
    }
    int newline = message.indexOf('\n');
    return newline < 0 ? message : message.substring(0, newline);
  }
}
