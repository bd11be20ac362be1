package dev.backlogagent.cli;

import dev.backlogagent.listener.InventoryReader;
import dev.backlogagent.procfs.NamespaceTarget;
import picocli.CommandLine.Option;

/** The --netns and --port options that narrow a command to some listeners, shared by listeners and trace. */
final class ListenerScopeOptions {
  @Option(names = "--netns", paramLabel = "INODE|PID|NAME",
      description = "Only this network namespace: its inode, the pid of a process in it, or its name under /run/netns.")
  String netns;

  @Option(names = "--port", paramLabel = "P", description = "Only listeners on this local port.")
  Integer port;

  /** Checks the values and resolves a pid to its namespace; bad input is a one-line error, exit 2. */
  InventoryReader.Scope resolve() {
    if (port != null && (port < 0 || port > 65535)) {
      throw new BadInputException("--port must be between 0 and 65535, not " + port);
    }
    return new InventoryReader.Scope(namespaceInode(), port);
  }

  private Long namespaceInode() {
    if (netns == null) {
      return null;
    }
    try {
      return NamespaceTarget.resolveOnHost(netns);
    } catch (NamespaceTarget.UnknownNamespaceException e) {
      throw new BadInputException("--netns " + netns + ": " + e.getMessage());
    }
  }
}
