package dev.backlogagent.listener;

import dev.backlogagent.procfs.ListenCounters;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;

/**
 * One interval of the agent's watch: the inventory at its end, how each namespace's counters moved,
 * and every listener that had activity.
 *
 * @param counterDeltas per namespace inode, how much each TcpExt counter rose during the interval
 * @param stateTransitions "FROM>TO" state-number pairs and how often they happened (with STATES on)
 * @param unattributedCookies per namespace inode, SYN cookies sent that no listener could be blamed for
 */
public record IntervalReport(
    Instant end,
    Duration length,
    Inventory inventory,
    Map<Long, ListenCounters> counterDeltas,
    List<ListenerInterval> listeners,
    Map<String, Long> stateTransitions,
    Map<Long, Long> unattributedCookies) {}
