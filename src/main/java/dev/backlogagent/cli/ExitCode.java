package dev.backlogagent.cli;

/** The exit codes of every command, in one place so that scripts and systemd can rely on them. */
public final class ExitCode {
  /** The command did what was asked (for doctor: the agent can observe something). */
  public static final int OK = 0;
  /** The command failed (for doctor: the agent could observe nothing on this host). */
  public static final int FAILURE = 1;
  /** The command line or the configuration was wrong. */
  public static final int BAD_INPUT = 2;

  private ExitCode() {}
}
