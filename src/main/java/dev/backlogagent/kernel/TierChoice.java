package dev.backlogagent.kernel;

import java.util.List;

/** The tier the agent would run on a host and why, decided from what was tried there, never from versions. */
public record TierChoice(Tier tier, String reason) {

  /** The tier chosen by climbing the ladder, and every rung with why it was or was not chosen. */
  public record Ladder(TierChoice choice, List<HostCapabilities.Rung> rungs) {}

  /** The libbpf-tools a host must have attaching for that rung: listen calls and state changes. */
  public static final List<String> LIBBPF_TOOLS_NEEDED = List.of("solisten", "tcpstates");

  /**
   * Climbs bpftrace → libbpf-tools → ftrace → counters and takes the first rung that works.
   * {@code bpftrace} is {@link #decide}'s answer for the first rung; a lower rung not tried (because a
   * higher one works) is null and is listed as not tried.
   */
  public static Ladder climb(
      HostCapabilities.ProcNetstat netstat,
      TierChoice bpftrace,
      HostCapabilities.LibbpfTools libbpfTools,
      List<HostCapabilities.ToolAttach> toolAttach,
      HostCapabilities.FtraceCheck ftrace) {
    List<HostCapabilities.Rung> rungs = new java.util.ArrayList<>();
    TierChoice chosen = null;
    boolean bpf = bpftrace.tier().runsBpftrace();
    rungs.add(new HostCapabilities.Rung("bpftrace", bpf ? bpftrace.tier() : Tier.TRACEPOINT, bpf, bpf,
        bpftrace.reason()));
    if (bpf) {
      chosen = bpftrace;
    }

    String toolsWhy;
    boolean toolsWork = false;
    if (!libbpfTools.found()) {
      toolsWhy = "not installed (" + libbpfTools.detail() + ")";
    } else if (toolAttach == null) {
      toolsWhy = "not tried: a rung above works";
    } else {
      List<String> parts = new java.util.ArrayList<>();
      boolean all = true;
      for (String needed : LIBBPF_TOOLS_NEEDED) {
        HostCapabilities.ToolAttach t = toolAttach.stream().filter(a -> a.tool().equals(needed)).findFirst().orElse(null);
        boolean works = t != null && t.works();
        all &= works;
        parts.add(needed + (works ? " attaches" : " fails (" + (t == null ? "not tried" : t.detail()) + ")"));
      }
      toolAttach.stream().filter(a -> !LIBBPF_TOOLS_NEEDED.contains(a.tool()))
          .forEach(a -> parts.add(a.tool() + (a.works() ? " attaches" : " fails (" + a.detail() + ")")));
      toolsWork = all;
      toolsWhy = (all ? "bcc's CO-RE tools instead of bpftrace: " : "needs solisten and tcpstates: ")
          + String.join("; ", parts);
    }
    boolean toolsChosen = chosen == null && toolsWork;
    rungs.add(new HostCapabilities.Rung("libbpf-tools", Tier.LIBBPF_TOOLS, toolsWork, toolsChosen, toolsWhy));
    if (toolsChosen) {
      chosen = new TierChoice(Tier.LIBBPF_TOOLS, toolsWhy);
    }

    boolean ftraceWorks = ftrace != null && ftrace.works();
    String ftraceWhy = ftrace == null ? "not tried: a rung above works"
        : ftraceWorks ? "no BPF: kernel trace events in a tracefs instance of its own (" + ftrace.detail() + ")"
        : ftrace.detail();
    boolean ftraceChosen = chosen == null && ftraceWorks;
    rungs.add(new HostCapabilities.Rung("ftrace", Tier.FTRACE, ftraceWorks, ftraceChosen, ftraceWhy));
    if (ftraceChosen) {
      chosen = new TierChoice(Tier.FTRACE, ftraceWhy + "; " + bpftrace.reason());
    }

    boolean countersChosen = chosen == null && netstat.readable();
    rungs.add(new HostCapabilities.Rung("counters", Tier.COUNTERS, netstat.readable(), countersChosen,
        netstat.readable() ? "netlink inventory and /proc counters: " + netstat.detail() : netstat.detail()));
    if (chosen == null) {
      String countersWhy = bpftrace.tier() == Tier.COUNTERS ? bpftrace.reason() : "netlink inventory and /proc counters only";
      chosen = netstat.readable() ? new TierChoice(Tier.COUNTERS, countersWhy + "; ftrace: " + ftraceWhy)
          : new TierChoice(Tier.NONE, "nothing to observe: " + netstat.detail());
    }
    return new Ladder(chosen, List.copyOf(rungs));
  }

  // Without these bpftrace cannot load or attach anything (CAP_SYS_ADMIN stands in for the first two before 5.8).
  private static final List<String> BPF_CAPABILITIES =
      List.of(Capability.CAP_BPF.name(), Capability.CAP_PERFMON.name(), Capability.CAP_SYS_ADMIN.name());

  /** Chooses the richest tier whose programs attach here. */
  public static TierChoice decide(
      HostCapabilities.ProcNetstat netstat,
      HostCapabilities.BpftraceBinary bpftrace,
      HostCapabilities.Attach attach,
      HostCapabilities.Capabilities capabilities) {
    if (!netstat.readable()) {
      return new TierChoice(Tier.NONE, "nothing to observe: " + netstat.detail());
    }
    String countersOnly = "netlink inventory and /proc counters only: ";
    if (!bpftrace.found()) {
      return new TierChoice(Tier.COUNTERS, countersOnly + "no bpftrace (" + bpftrace.detail() + ")");
    }
    HostCapabilities.AttachResult tracepoint = attach.tracepoint();
    HostCapabilities.AttachResult kprobe = attach.kprobe();
    HostCapabilities.AttachResult fentry = attach.fentry();
    if (!tracepoint.works()) {
      List<String> missingForBpf =
          capabilities.missing().stream().filter(BPF_CAPABILITIES::contains).toList();
      String why =
          missingForBpf.isEmpty()
              ? "no BPF program attaches (tracepoint: " + tracepoint.detail() + ")"
              : "no BPF program attaches: missing " + String.join(", ", capabilities.missing())
                  + " (tracepoint: " + tracepoint.detail() + ")";
      if (kprobe.works()) {
        why += "; kprobes attach, but both BPF tiers also need tracepoints";
      }
      return new TierChoice(Tier.COUNTERS, countersOnly + why);
    }
    if (kprobe.works()) {
      String reason =
          fentry.works()
              ? "kprobe, fentry and tracepoint programs: kprobes and fentry attach"
              : "kprobe and tracepoint programs: kprobes attach; fentry does not (" + fentry.detail()
                  + "), so the kprobe variants run";
      return new TierChoice(Tier.KPROBE, reason);
    }
    return new TierChoice(
        Tier.TRACEPOINT, "tracepoint programs: kprobes are not available on this kernel (" + kprobe.detail() + ")");
  }
}
