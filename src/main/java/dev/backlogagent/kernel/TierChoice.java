package dev.backlogagent.kernel;

import java.util.List;

/** The tier the agent would run on a host and why, decided from what was tried there, never from versions. */
public record TierChoice(Tier tier, String reason) {

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
