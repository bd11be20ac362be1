package dev.backlogagent.config;

/** A configuration the daemon refuses to start with; the message is one line that names the key or file. */
public final class ConfigException extends Exception {
  public ConfigException(String message) {
    super(message);
  }
}
