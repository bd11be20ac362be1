package dev.backlogagent.listener;

import com.fasterxml.jackson.annotation.JsonValue;
import java.util.Locale;

/** A short verdict on a listener that explains why it may be losing connections. */
public enum ListenerFlag {
  /** The accept queue is longer than the backlog: the kernel refuses new connections right now. */
  FULL,
  /** The effective backlog equals the namespace's somaxconn: the application's request was probably clamped. */
  AT_SOMAXCONN,
  /** The requested backlog is known and larger than the effective one: somaxconn cut it. */
  TRUNCATED,
  /** The listener's drop count rose since the previous look. */
  DROPPING;

  @JsonValue
  public String label() {
    return name().toLowerCase(Locale.ROOT);
  }
}
