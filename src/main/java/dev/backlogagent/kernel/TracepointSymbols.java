package dev.backlogagent.kernel;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.HashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Names for the numbers a tracepoint carries, read from the running kernel's format file
 * ({@code __print_symbolic(REC->field, { 40, "TCP_LISTEN_OVERFLOW" }, …)}). Drop and reset reasons are
 * enums whose numbers change between kernels, so the agent never hard-codes them.
 */
public final class TracepointSymbols {
  private static final Pattern ENTRY = Pattern.compile("\\{\\s*(-?\\d+)\\s*,\\s*\"([^\"]*)\"\\s*}");

  private final Map<Long, String> names;

  private TracepointSymbols(Map<Long, String> names) {
    this.names = names;
  }

  /** No names known: every number prints as itself. */
  public static TracepointSymbols none() {
    return new TracepointSymbols(Map.of());
  }

  /** Kernel drop reasons (enum skb_drop_reason) from skb:kfree_skb. */
  public static TracepointSymbols dropReasons() {
    return read("skb/kfree_skb", "reason");
  }

  /** Reset reasons (enum sk_rst_reason) from tcp:tcp_send_reset. */
  public static TracepointSymbols resetReasons() {
    return read("tcp/tcp_send_reset", "reason");
  }

  private static TracepointSymbols read(String event, String field) {
    for (String root : new String[] {"/sys/kernel/tracing/events/", "/sys/kernel/debug/tracing/events/"}) {
      try {
        return parse(Files.readString(Path.of(root + event + "/format"), StandardCharsets.US_ASCII), field);
      } catch (IOException e) {
        // try the other tracefs mount point; without either, numbers stay numbers
      }
    }
    return none();
  }

  /** Parses the {@code __print_symbolic} table for {@code field} in a tracepoint format file. */
  public static TracepointSymbols parse(String format, String field) {
    String marker = "__print_symbolic(REC->" + field + ",";
    int start = format.indexOf(marker);
    if (start < 0) {
      return none();
    }
    int end = format.indexOf(')', start + marker.length());
    String table = format.substring(start + marker.length(), end < 0 ? format.length() : end);
    Map<Long, String> names = new HashMap<>();
    Matcher m = ENTRY.matcher(table);
    while (m.find()) {
      names.put(Long.parseLong(m.group(1)), m.group(2));
    }
    return new TracepointSymbols(Collections.unmodifiableMap(names));
  }

  /** The name of {@code number}, or the number itself when this kernel gives it none. */
  public String name(long number) {
    return names.getOrDefault(number, Long.toString(number));
  }

  /** The number this kernel gives a name, or -1. */
  public long number(String name) {
    return names.entrySet().stream().filter(e -> e.getValue().equals(name)).mapToLong(Map.Entry::getKey).findFirst().orElse(-1);
  }

  public boolean isEmpty() {
    return names.isEmpty();
  }
}
