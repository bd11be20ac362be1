package dev.backlogagent.listener;

import com.fasterxml.jackson.annotation.JsonInclude;
import dev.backlogagent.procfs.ListenCounters;
import dev.backlogagent.procfs.NamespaceSysctls;

/**
 * A network namespace's limits and listener counters at the moment of an inventory.
 *
 * @param netns the namespace's inode
 * @param name its name under /run/netns, when it has one
 */
public record NetNamespace(
    long netns,
    @JsonInclude(JsonInclude.Include.NON_NULL) String name,
    NamespaceSysctls sysctls,
    ListenCounters counters) {}
