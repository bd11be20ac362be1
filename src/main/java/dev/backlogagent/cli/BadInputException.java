package dev.backlogagent.cli;

/** A user error (bad argument, bad configuration value): reported in one line with exit code 2. */
public final class BadInputException extends RuntimeException {
  public BadInputException(String message) {
    super(message);
  }
}
