package dev.backlogagent.bpf;

import dev.backlogagent.kernel.Tier;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One thing the agent watches in the kernel, and the bpftrace programs (under bpf/) that can watch it, in
 * the order the agent prefers them: the first that fits the tier and the kernel's tracepoints runs
 * ({@link ProgramChoice}). Variants after the first are named for what the kernel lacks.
 */
public enum Concern {
  /** listen() calls with the requested backlog, resolved to namespace, address and port. */
  LISTEN(ProgramVariant.tracepoints("listen.bt",
      Map.of("syscalls:sys_enter_listen", List.of("fd", "backlog"), "syscalls:sys_exit_listen", List.of("ret")), "")),
  /** Completed handshakes per listener and the accept-queue depth at each. */
  HANDSHAKES(ProgramVariant.tracepoints("handshakes.bt",
      Map.of("sock:inet_sock_set_state", List.of("skaddr", "oldstate", "newstate", "protocol")), "")),
  /** SYN-ACK retransmits per listener. */
  SYNACK(ProgramVariant.tracepoints("synack.bt", Map.of("tcp:tcp_retransmit_synack", List.of("skaddr")), "")),
  /** Packets freed with a drop reason at a listener (per kernel drop reason). */
  DROPS(
      ProgramVariant.tracepoints("drops.bt", Map.of("skb:kfree_skb", List.of("rx_sk", "reason")), ""),
      ProgramVariant.tracepoints("drops-no-rx-sk.bt", Map.of("skb:kfree_skb", List.of("skbaddr", "protocol", "reason")),
          "no rx_sk in kfree_skb: drops are charged by the packet's destination port, so drops of a listener's"
              + " connections count as its own, and IPv4 drops do not join a dual-stack [::] listener"),
      ProgramVariant.tracepoints("drops-no-reason.bt", Map.of("skb:kfree_skb", List.of("skbaddr", "protocol")),
          "no reason nor rx_sk in kfree_skb: drops have no reason (no TCP_LISTEN_OVERFLOW) and are charged by"
              + " the packet's destination port")),
  /** Resets sent, with reason and state. */
  RESETS(
      ProgramVariant.tracepoints("resets.bt",
          Map.of("tcp:tcp_send_reset", List.of("skbaddr", "skaddr", "state", "reason")), ""),
      ProgramVariant.tracepoints("resets-no-reason.bt", Map.of("tcp:tcp_send_reset", List.of("skbaddr", "skaddr", "state")),
          "no reason in tcp_send_reset: resets carry no reason, and on such kernels (before 6.10) resets sent"
              + " without a socket (a closed port, a listener that is down) are not traced")),
  /** Every TCP state transition, counted by (from, to). Frequent: only when asked for. */
  STATES(ProgramVariant.tracepoints("states.bt",
      Map.of("sock:inet_sock_set_state", List.of("oldstate", "newstate", "protocol")), "")),
  /** Accept-queue wait from the handshake to accept() returning. */
  ACCEPT_WAIT(
      new ProgramVariant("kprobe/acceptwait-kfunc.bt", Set.of(Tier.KPROBE), true,
          Map.of("sock:inet_sock_set_state", List.of("skaddr", "oldstate", "newstate", "protocol")), ""),
      new ProgramVariant("kprobe/acceptwait.bt", Set.of(Tier.KPROBE), false,
          Map.of("sock:inet_sock_set_state", List.of("skaddr", "oldstate", "newstate", "protocol")),
          "no fentry: a kretprobe on inet_csk_accept, which misses accepts beyond its instance limit"),
      ProgramVariant.tracepoints("acceptwait.bt",
          Map.of("syscalls:sys_exit_accept", List.of("ret"), "syscalls:sys_exit_accept4", List.of("ret")), "")),
  /** SYNs refused at the moment they are refused, with queue and limit (kprobe tier). */
  SYN_REFUSED(
      new ProgramVariant("kprobe/synrefused-kfunc.bt", Set.of(Tier.KPROBE), true, Map.of(), ""),
      // Without fentry, kprobes on the per-SYN path: dearer per SYN, but nothing is lost.
      new ProgramVariant("kprobe/synrefused.bt", Set.of(Tier.KPROBE), false, Map.of(), ""));

  private final List<ProgramVariant> variants;

  Concern(ProgramVariant... variants) {
    this.variants = List.of(variants);
  }

  /** Every program that can serve this concern, the preferred first. */
  public List<ProgramVariant> variants() {
    return variants;
  }

  /** The concern's name in output and metrics, e.g. "accept_wait". */
  @com.fasterxml.jackson.annotation.JsonValue
  public String label() {
    return name().toLowerCase(java.util.Locale.ROOT);
  }

  /** The preferred program of this concern on {@code tier}, or null when the tier runs none. */
  public ProgramVariant main(Tier tier) {
    return variants.stream().filter(v -> v.tiers().contains(tier)).findFirst().orElse(null);
  }
}
