package dev.backlogagent.listener;

import dev.backlogagent.decode.StateTransition;
import dev.backlogagent.diagnosis.NamespaceFinding;
import dev.backlogagent.procfs.ListenCounters;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;

/**
 * One interval of the agent's watch: the inventory at its end, how each namespace's counters moved,
 * and every listener that had activity.
 *
 * @param length the real time between the inventory that started the interval and the one that ended it
 *     (what every delta of the report is measured over)
 * @param counterDeltas per namespace inode, how much each TcpExt counter rose during the interval
 * @param stateTransitions how often each state change happened, host-wide (with STATES on)
 * @param namespaceFindings per namespace inode, what the diagnosis found there but cannot pin on one listener
 * @param resets resets that concern a listener or a refused connection to a local port, aggregated
 */
public record IntervalReport(
    Instant end,
    Duration length,
    Inventory inventory,
    Map<Long, ListenCounters> counterDeltas,
    List<ListenerInterval> listeners,
    Map<StateTransition, Long> stateTransitions,
    Map<Long, List<NamespaceFinding>> namespaceFindings,
    List<ResetCount> resets) {}
