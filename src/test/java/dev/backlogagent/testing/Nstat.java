package dev.backlogagent.testing;

import java.util.HashMap;
import java.util.Map;

/** What {@code nstat -asz} says: the reference for the namespace counters. */
public record Nstat(Map<String, Long> counters) {
  static Nstat parse(String output) {
    Map<String, Long> counters = new HashMap<>();
    for (String line : output.split("\n")) {
      String[] parts = line.trim().split("\\s+");
      if (parts.length >= 2 && !parts[0].startsWith("#")) {
        try {
          counters.put(parts[0], Long.parseLong(parts[1]));
        } catch (NumberFormatException e) {
          // a header line
        }
      }
    }
    return new Nstat(counters);
  }

  public long get(String name) {
    Long value = counters.get(name);
    if (value == null) {
      throw new AssertionError("nstat has no " + name);
    }
    return value;
  }
}
