package dev.backlogagent.cli;

import dev.backlogagent.listener.InventoryReader;
import dev.backlogagent.procfs.NetNamespaces;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** The --netns and --port options that narrow a command to some listeners, shared by listeners and trace. */
final class ListenerScopeOptions {
  /** The largest pid Linux allows (pid_max's ceiling); anything larger is a namespace inode. */
  private static final long PID_MAX_LIMIT = 4_194_304L;

  @Option(names = "--netns", paramLabel = "INODE|PID", description = "Only this network namespace: its inode, or the pid of a process in it.")
  Long netns;

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
    if (netns > PID_MAX_LIMIT) {
      return netns;
    }
    long inode = NetNamespaces.inodeOf(Path.of("/proc/" + netns + "/ns/net"));
    if (inode <= 0) {
      throw new BadInputException("--netns " + netns + ": no process with that pid (or its namespace is not readable)");
    }
    return inode;
  }
}
