package dev.backlogagent.listener;

import com.fasterxml.jackson.annotation.JsonInclude;
import dev.backlogagent.procfs.ListenCounters;
import dev.backlogagent.procfs.NamespaceSysctls;

/**
 * A network namespace's limits and listener counters at the moment of an inventory.
 *
 * @param netns the namespace's inode
 * @param name its name under /run/netns, when it has one
 * @param counters its TcpExt counters, read just before its listeners
 * @param listenDropsWhileRead how much ListenDrops rose while its listeners were read (counters read again
 *     after them): the most drops a listener's sk_drops can show that {@code counters} do not yet
 */
public record NetNamespace(
    long netns,
    @JsonInclude(JsonInclude.Include.NON_NULL) String name,
    NamespaceSysctls sysctls,
    ListenCounters counters,
    @com.fasterxml.jackson.annotation.JsonIgnore long listenDropsWhileRead) {

  /** A namespace whose counters were read with no measure of what rose while its sockets were read. */
  public NetNamespace(long netns, String name, NamespaceSysctls sysctls, ListenCounters counters) {
    this(netns, name, sysctls, counters, 0);
  }
}
