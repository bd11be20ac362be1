package dev.backlogagent.cli;

import picocli.CommandLine.Command;

/** Placeholder until the inventory lands. */
@Command(name = "listeners", description = "Lists every listening TCP socket with its queues, backlog and drops.")
final class ListenersCommand implements java.util.concurrent.Callable<Integer> {
  @Override
  public Integer call() {
    throw new UnsupportedOperationException("listeners is not built yet");
  }
}
