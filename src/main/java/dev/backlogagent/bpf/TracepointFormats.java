package dev.backlogagent.bpf;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The fields each tracepoint has on the running kernel, read from its {@code format} file under
 * {@code events/} of tracefs. This is how the agent picks a program variant by what the kernel offers
 * (does {@code skb:kfree_skb} have {@code rx_sk}?), never by its version number.
 */
public final class TracepointFormats {
  /**
   * A directory laid out like /sys/kernel/tracing/events to read instead (a diagnostic and test override:
   * e.g. a kernel's format files with a field removed).
   */
  public static final String OVERRIDE_ENVIRONMENT = "BACKLOG_AGENT_TRACEPOINT_FORMATS";

  private static final Pattern FIELD = Pattern.compile("^\\s*field:(.*?)\\s*([A-Za-z_][A-Za-z0-9_]*)\\s*(\\[[^\\]]*\\])?\\s*;");

  private final Path events;

  private TracepointFormats(Path events) {
    this.events = events;
  }

  /** The format files under {@code events} (a directory like /sys/kernel/tracing/events). */
  public static TracepointFormats at(Path events) {
    return new TracepointFormats(events);
  }

  /** This kernel's, from either tracefs mount point, or from the override directory when the environment names one. */
  public static TracepointFormats ofThisKernel() {
    String override = System.getenv(OVERRIDE_ENVIRONMENT);
    if (override != null && !override.isBlank()) {
      return at(Path.of(override));
    }
    for (String root : new String[] {"/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"}) {
      if (Files.isDirectory(Path.of(root))) {
        return at(Path.of(root));
      }
    }
    return at(Path.of("/sys/kernel/tracing/events"));
  }

  /** Where the format files are read from. */
  public Path directory() {
    return events;
  }

  /** Whether any tracepoint can be read here; without tracefs nothing can be told, and main programs are tried. */
  public boolean readable() {
    return Files.isDirectory(events);
  }

  /**
   * The fields of {@code event} ("skb:kfree_skb"), common_* left out; empty when this kernel has no such
   * tracepoint (or its format cannot be read).
   */
  public Optional<Set<String>> fields(String event) {
    String[] parts = event.split(":", 2);
    Path format = events.resolve(parts[0]).resolve(parts[1]).resolve("format");
    try {
      return Optional.of(parse(Files.readString(format, StandardCharsets.US_ASCII)));
    } catch (IOException | RuntimeException e) {
      return Optional.empty();
    }
  }

  /** The field names in the text of a format file, in order, without the common_* header fields. */
  public static Set<String> parse(String format) {
    Set<String> names = new LinkedHashSet<>();
    for (String line : format.lines().toList()) {
      Matcher m = FIELD.matcher(line);
      if (m.find() && !m.group(2).startsWith("common_")) {
        names.add(m.group(2));
      }
    }
    return names;
  }
}
