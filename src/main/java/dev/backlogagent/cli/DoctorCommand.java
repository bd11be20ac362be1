package dev.backlogagent.cli;

import picocli.CommandLine.Command;

/** Placeholder until the capability probe lands. */
@Command(name = "doctor", description = "Tells what this host's kernel lets the agent observe.")
final class DoctorCommand implements java.util.concurrent.Callable<Integer> {
  @Override
  public Integer call() {
    throw new UnsupportedOperationException("doctor is not built yet");
  }
}
