package dev.backlogagent.export;

import dev.backlogagent.config.AgentConfig;
import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.listener.Inventory;
import dev.backlogagent.listener.Listener;
import dev.backlogagent.listener.NetNamespace;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Which listeners the daemon exports, from the config's listeners section. An empty list lets every
 * value through; a namespace is named by its inode or its name under /run/netns.
 */
public final class ListenerFilter {
  private final Set<Integer> ports;
  private final Set<String> namespaces;
  private final Set<String> processes;

  public ListenerFilter(AgentConfig.Listeners config) {
    this.ports = Set.copyOf(config.ports());
    this.namespaces = Set.copyOf(config.netns());
    this.processes = Set.copyOf(config.processes());
  }

  public static ListenerFilter all() {
    return new ListenerFilter(new AgentConfig.Listeners(null, null, null, null));
  }

  public boolean admits(Listener l, Inventory inventory) {
    return portAndNamespace(l.key().netns(), l.key().port(), inventory)
        && (processes.isEmpty() || l.processes().stream().anyMatch(p -> processes.contains(p.comm())));
  }

  /** For an event that names a listener the inventory may not have; {@code comm} null when the event has none. */
  public boolean admits(ListenerKey key, String comm, Inventory inventory) {
    if (!portAndNamespace(key.netns(), key.port(), inventory)) {
      return false;
    }
    if (processes.isEmpty()) {
      return true;
    }
    if (comm != null && processes.contains(comm)) {
      return true;
    }
    Listener joined = dev.backlogagent.listener.ListenerCorrelator.join(inventory, key);
    return joined != null && admits(joined, inventory);
  }

  public boolean admitsNamespace(NetNamespace ns) {
    return namespaces.isEmpty() || namespaces.contains(Long.toString(ns.netns()))
        || (ns.name() != null && namespaces.contains(ns.name()));
  }

  private boolean portAndNamespace(long netns, int port, Inventory inventory) {
    if (!ports.isEmpty() && !ports.contains(port)) {
      return false;
    }
    if (namespaces.isEmpty() || namespaces.contains(Long.toString(netns))) {
      return true;
    }
    return inventory != null && inventory.namespace(netns).map(this::admitsNamespace).orElse(false);
  }

  /** Namespace names that no namespace of the inventory has (a typo, or not created yet). */
  public List<String> unmatchedNamespaces(Inventory inventory) {
    Set<String> seen = new HashSet<>();
    for (NetNamespace ns : inventory.namespaces()) {
      seen.add(Long.toString(ns.netns()));
      if (ns.name() != null) {
        seen.add(ns.name());
      }
    }
    return namespaces.stream().filter(n -> !seen.contains(n)).sorted().toList();
  }
}
