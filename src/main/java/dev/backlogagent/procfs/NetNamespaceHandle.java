package dev.backlogagent.procfs;

import java.util.List;

/**
 * A network namespace and the files through which it can be entered.
 *
 * @param inode the namespace's inode number, the id that {@code ip netns identify}, {@code lsns} and BPF's
 *     {@code net->ns.inum} all use
 * @param name the name under /run/netns when {@code ip netns} made it, else null
 * @param handles paths to open for setns(2), most durable first: a /run/netns bind mount outlives every
 *     process; a /proc/PID/ns/net vanishes when that process exits, so several are kept
 */
public record NetNamespaceHandle(long inode, String name, List<String> handles) {}
