package dev.backlogagent.export;

import dev.backlogagent.bpf.ConcernStatus;
import java.util.List;
import java.util.Map;

/**
 * The agent's own health, as its metrics report it.
 *
 * @param decodedEvents events decoded from the BPF programs since the start
 * @param lostEvents events the kernel dropped before bpftrace could read them (perf buffer full)
 * @param malformedLines child output that was not a bpftrace record, or broke the programs' contract
 * @param childRestarts how often a bpftrace child was started again after it exited
 * @param tier the tier in use
 * @param lastExport per signal (metrics, traces), when an export last succeeded, in epoch milliseconds
 * @param exportFailures per signal, exports that failed
 * @param concerns what became of each BPF concern (runs, as which program, or cannot)
 */
public record AgentStatus(
    long decodedEvents,
    long lostEvents,
    long malformedLines,
    long childRestarts,
    String tier,
    Map<String, Long> lastExport,
    Map<String, Long> exportFailures,
    List<ConcernStatus> concerns) {}
