package dev.backlogagent.ftrace;

import dev.backlogagent.kernel.TracepointSymbols;
import java.nio.ByteBuffer;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One trace event's layout as the running kernel describes it in {@code events/SYSTEM/NAME/format}: its id
 * (the {@code common_type} every record starts with), each field's offset and size, and the print format
 * whose {@code __print_symbolic} tables name its enum values. Records are decoded by these offsets only, so
 * a field that moves between kernels is still read right.
 */
public record EventFormat(String system, String name, int id, Map<String, Field> fields, String printFormat) {

  private static final Pattern FIELD =
      Pattern.compile("field:(.+?)\\s*;\\s*offset:(\\d+);\\s*size:(\\d+);\\s*signed:(\\d+);");
  private static final Pattern ID = Pattern.compile("(?m)^ID:\\s*(\\d+)");

  /** One field: its C declaration (e.g. {@code __u8 saddr[4]}), name, offset and size in bytes. */
  public record Field(String declaration, String name, int offset, int size, boolean signed) {}

  /** A format file that does not say what the decoder needs. */
  public static final class FormatException extends Exception {
    public FormatException(String message) {
      super(message);
    }
  }

  /** Parses a format file's text. */
  public static EventFormat parse(String system, String name, String text) throws FormatException {
    Matcher id = ID.matcher(text);
    if (!id.find()) {
      throw new FormatException(system + ":" + name + " format has no ID line");
    }
    Map<String, Field> fields = new LinkedHashMap<>();
    Matcher m = FIELD.matcher(text);
    while (m.find()) {
      String declaration = m.group(1).strip();
      String fieldName = fieldName(declaration);
      fields.put(fieldName, new Field(declaration, fieldName, Integer.parseInt(m.group(2)),
          Integer.parseInt(m.group(3)), m.group(4).equals("1")));
    }
    if (!fields.containsKey("common_type")) {
      throw new FormatException(system + ":" + name + " format has no common_type field");
    }
    int printAt = text.indexOf("print fmt:");
    String print = printAt < 0 ? "" : text.substring(printAt);
    return new EventFormat(system, name, Integer.parseInt(id.group(1)), Collections.unmodifiableMap(fields), print);
  }

  // "unsigned char saddr[4]" -> saddr; "const char * name" -> name; "__data_loc char[] x" -> x
  private static String fieldName(String declaration) {
    String d = declaration.replaceAll("\\[[^]]*]$", "");
    int cut = Math.max(d.lastIndexOf(' '), d.lastIndexOf('*'));
    return d.substring(cut + 1);
  }

  public boolean has(String field) {
    return fields.containsKey(field);
  }

  public Optional<Field> field(String field) {
    return Optional.ofNullable(fields.get(field));
  }

  /** The names this kernel gives the numbers of {@code field}, from the print format's __print_symbolic. */
  public TracepointSymbols symbols(String field) {
    return TracepointSymbols.parse(printFormat, field);
  }

  /** An integer field of the record that starts at {@code base}, sign-extended if the format says signed. */
  public long integer(ByteBuffer record, int base, String field) {
    Field f = fields.get(field);
    if (f == null) {
      throw new IllegalArgumentException(system + ":" + name + " has no field " + field);
    }
    int at = base + f.offset();
    return switch (f.size()) {
      case 1 -> f.signed() ? record.get(at) : Byte.toUnsignedLong(record.get(at));
      case 2 -> f.signed() ? record.getShort(at) : Short.toUnsignedLong(record.getShort(at));
      case 4 -> f.signed() ? record.getInt(at) : Integer.toUnsignedLong(record.getInt(at));
      case 8 -> record.getLong(at);
      default -> throw new IllegalArgumentException(field + " is " + f.size() + " bytes, not an integer");
    };
  }

  /** The raw bytes of an array field (an address, a sockaddr). */
  public byte[] bytes(ByteBuffer record, int base, String field) {
    Field f = fields.get(field);
    if (f == null) {
      throw new IllegalArgumentException(system + ":" + name + " has no field " + field);
    }
    byte[] out = new byte[f.size()];
    record.get(base + f.offset(), out);
    return out;
  }

  /** The smallest record length that holds every field. */
  public int minimumLength() {
    return fields.values().stream().mapToInt(f -> f.offset() + f.size()).max().orElse(0);
  }
}
