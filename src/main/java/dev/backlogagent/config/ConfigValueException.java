package dev.backlogagent.config;

import java.time.Duration;

/** A value the configuration refuses; {@code key} is the key's name within its section. */
public final class ConfigValueException extends IllegalArgumentException {
  private final String key;

  public ConfigValueException(String key, String message) {
    super(message);
    this.key = key;
  }

  public String key() {
    return key;
  }

  /** The value, or its default when absent; refused outside [min, max]. */
  static Duration within(String key, Duration value, Duration fallback, Duration min, Duration max) {
    Duration v = value == null ? fallback : value;
    if (v != null && (v.compareTo(min) < 0 || v.compareTo(max) > 0)) {
      throw new ConfigValueException(key, "must be between " + Durations.format(min) + " and " + Durations.format(max)
          + ", got " + Durations.format(v));
    }
    return v;
  }
}
