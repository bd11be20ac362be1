package dev.backlogagent.bpf;

import dev.backlogagent.kernel.Tier;
import java.util.ArrayList;
import java.util.List;

/** One thing the agent watches in the kernel, and the bpftrace program (under bpf/) that watches it. */
public enum Concern {
  /** listen() calls with the requested backlog, resolved to namespace, address and port. */
  LISTEN("listen.bt", Tier.TRACEPOINT),
  /** Completed handshakes per listener and the accept-queue depth at each. */
  HANDSHAKES("handshakes.bt", Tier.TRACEPOINT),
  /** SYN-ACK retransmits per listener. */
  SYNACK("synack.bt", Tier.TRACEPOINT),
  /** Packets freed with a drop reason at a listener (per kernel drop reason). */
  DROPS("drops.bt", Tier.TRACEPOINT),
  /** Resets sent, with reason and state. */
  RESETS("resets.bt", Tier.TRACEPOINT),
  /** Every TCP state transition, counted by (from, to). Frequent: only when asked for. */
  STATES("states.bt", Tier.TRACEPOINT),
  /** Accept-queue wait from ESTABLISHED to accept() returning, through the accept syscalls. */
  ACCEPT_WAIT("acceptwait.bt", Tier.TRACEPOINT),
  /** SYNs refused at the moment they are refused, with queue and limit (kprobes). */
  SYN_REFUSED("kprobe/synrefused.bt", Tier.KPROBE),
  /** The same through fentry, cheaper where it attaches. */
  SYN_REFUSED_FENTRY("kprobe/synrefused-kfunc.bt", Tier.KPROBE),
  /** Accept-queue wait from the accept path itself (kretprobe on inet_csk_accept). */
  ACCEPT_WAIT_KPROBE("kprobe/acceptwait.bt", Tier.KPROBE),
  /** The same through fexit. */
  ACCEPT_WAIT_FENTRY("kprobe/acceptwait-kfunc.bt", Tier.KPROBE);

  private final String file;
  private final Tier tier;

  Concern(String file, Tier tier) {
    this.file = file;
    this.tier = tier;
  }

  /** The program's path relative to bpf/. */
  public String file() {
    return file;
  }

  public Tier tier() {
    return tier;
  }

  /**
   * The concerns a tier runs. The kprobe tier replaces the syscall-based accept wait with the accept
   * path's own and adds refused SYNs; fentry variants where fentry attaches, kprobes otherwise.
   */
  public static List<Concern> forTier(Tier tier, boolean fentry, boolean states) {
    List<Concern> chosen = new ArrayList<>();
    if (tier != Tier.TRACEPOINT && tier != Tier.KPROBE) {
      return chosen;
    }
    chosen.addAll(List.of(LISTEN, HANDSHAKES, SYNACK, DROPS, RESETS));
    if (states) {
      chosen.add(STATES);
    }
    if (tier == Tier.KPROBE) {
      chosen.add(fentry ? SYN_REFUSED_FENTRY : SYN_REFUSED);
      chosen.add(fentry ? ACCEPT_WAIT_FENTRY : ACCEPT_WAIT_KPROBE);
    } else {
      chosen.add(ACCEPT_WAIT);
    }
    return chosen;
  }
}
