package dev.backlogagent.cli;

import picocli.CommandLine.IVersionProvider;

/** Reads the version Maven wrote into the jar's manifest. */
final class Version implements IVersionProvider {
  @Override
  public String[] getVersion() {
    String v = BacklogAgent.class.getPackage().getImplementationVersion();
    return new String[] {"backlog-agent " + (v == null ? "development build" : v)};
  }
}
