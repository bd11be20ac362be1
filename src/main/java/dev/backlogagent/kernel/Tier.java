package dev.backlogagent.kernel;

import com.fasterxml.jackson.annotation.JsonValue;
import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/** How much the agent can observe on a host, richest first; the daemon runs the programs of one tier. */
public enum Tier {
  /** kprobe and fentry programs plus the tracepoint ones: kprobes attach. */
  KPROBE,
  /** Tracepoint programs only: tracepoints attach but kprobes do not. */
  TRACEPOINT,
  /** bcc's prebuilt CO-RE tools (tcpstates, and solisten/tcpsynbl where kprobes attach) instead of bpftrace. */
  LIBBPF_TOOLS,
  /** No BPF: the kernel's trace events through a tracefs instance of the agent's own, read by the JVM. */
  FTRACE,
  /** No BPF: netlink listener inventory and /proc counters only. */
  COUNTERS,
  /** Not even /proc/net/netstat can be read: nothing to observe. */
  NONE;

  /** The name used in output, configuration and flags, e.g. "tracepoint", "libbpf-tools". */
  @JsonValue
  public String label() {
    return name().toLowerCase(Locale.ROOT).replace('_', '-');
  }

  /** Whether this tier runs bpftrace programs (the others run none, or other sources of events). */
  public boolean runsBpftrace() {
    return this == KPROBE || this == TRACEPOINT;
  }

  /** Whether the agent can observe anything at this tier. */
  public boolean canObserve() {
    return this != NONE;
  }

  /** The tier named {@code label} (as in a configuration file or a flag forcing the tier). */
  public static Tier parse(String label) {
    for (Tier tier : values()) {
      if (tier.label().equals(label.strip().toLowerCase(Locale.ROOT).replace('_', '-'))) {
        return tier;
      }
    }
    throw new IllegalArgumentException(
        "unknown tier '" + label + "'; expected one of "
            + Arrays.stream(values()).map(Tier::label).collect(Collectors.joining(", ")));
  }
}
