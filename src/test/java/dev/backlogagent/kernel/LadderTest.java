package dev.backlogagent.kernel;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The ladder bpftrace → libbpf-tools → ftrace → counters as a table: what was tried, which rung is chosen. */
class LadderTest {
  private static final HostCapabilities.ProcNetstat NETSTAT = new HostCapabilities.ProcNetstat(true, "readable");
  private static final TierChoice BPFTRACE_TRACEPOINT = new TierChoice(Tier.TRACEPOINT, "tracepoint programs");
  private static final TierChoice NO_BPFTRACE = new TierChoice(Tier.COUNTERS, "netlink inventory and /proc counters only: no bpftrace");
  private static final TierChoice BPF_REFUSED =
      new TierChoice(Tier.COUNTERS, "netlink inventory and /proc counters only: no BPF program attaches (Operation not permitted)");
  private static final HostCapabilities.LibbpfTools TOOLS = new HostCapabilities.LibbpfTools(true, "/usr/sbin/tcpstates", "0.26", "dpkg", "libbpf-tools 0.26");
  private static final HostCapabilities.LibbpfTools NO_TOOLS = new HostCapabilities.LibbpfTools(false, null, null, null, "tcpstates not found");
  private static final List<HostCapabilities.ToolAttach> KPROBE_KERNEL = List.of(attach("solisten", true),
      attach("tcpstates", true), attach("tcpsynbl", true));
  private static final List<HostCapabilities.ToolAttach> TRACEPOINT_KERNEL = List.of(attach("solisten", false),
      attach("tcpstates", true), attach("tcpsynbl", false));
  private static final List<HostCapabilities.ToolAttach> BPF_DENIED = List.of(attach("solisten", false),
      attach("tcpstates", false), attach("tcpsynbl", false));
  private static final HostCapabilities.FtraceCheck FTRACE = new HostCapabilities.FtraceCheck(true, "/sys/kernel/tracing", "instance made", 3);
  private static final HostCapabilities.FtraceCheck NO_FTRACE =
      new HostCapabilities.FtraceCheck(false, null, "no tracefs with instances at /sys/kernel/tracing", 0);

  static Stream<Arguments> situations() {
    return Stream.of(
        Arguments.of("bpftrace attaches: the first rung, the rest not tried", BPFTRACE_TRACEPOINT, TOOLS, null, null,
            Tier.TRACEPOINT, "bpftrace"),
        Arguments.of("no bpftrace, libbpf-tools attach with kprobes", NO_BPFTRACE, TOOLS, KPROBE_KERNEL, null,
            Tier.LIBBPF_TOOLS, "libbpf-tools"),
        Arguments.of("no bpftrace, no kprobes: solisten fails, ftrace below", NO_BPFTRACE, TOOLS, TRACEPOINT_KERNEL, FTRACE,
            Tier.FTRACE, "ftrace"),
        Arguments.of("bpf(2) denied: every BPF rung fails, ftrace works", BPF_REFUSED, TOOLS, BPF_DENIED, FTRACE,
            Tier.FTRACE, "ftrace"),
        Arguments.of("no bpftrace, no libbpf-tools", NO_BPFTRACE, NO_TOOLS, null, FTRACE, Tier.FTRACE, "ftrace"),
        Arguments.of("nothing but counters", BPF_REFUSED, NO_TOOLS, null, NO_FTRACE, Tier.COUNTERS, "counters"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("situations")
  void theFirstRungThatWorksIsChosenAndEveryRungSaysWhy(String situation, TierChoice bpftrace,
      HostCapabilities.LibbpfTools tools, List<HostCapabilities.ToolAttach> attached, HostCapabilities.FtraceCheck ftrace,
      Tier expected, String chosenRung) {
    TierChoice.Ladder ladder = TierChoice.climb(NETSTAT, bpftrace, tools, attached, ftrace);
    assertThat(ladder.choice().tier()).isEqualTo(expected);
    assertThat(ladder.rungs()).extracting(HostCapabilities.Rung::rung)
        .containsExactly("bpftrace", "libbpf-tools", "ftrace", "counters");
    assertThat(ladder.rungs()).filteredOn(HostCapabilities.Rung::chosen).singleElement()
        .satisfies(r -> assertThat(r.rung()).isEqualTo(chosenRung));
    assertThat(ladder.rungs()).allSatisfy(r -> assertThat(r.why()).isNotBlank());
  }

  @org.junit.jupiter.api.Test
  void aRungNotChosenSaysWhichToolFailedAndWhy() {
    TierChoice.Ladder ladder = TierChoice.climb(NETSTAT, NO_BPFTRACE, TOOLS, TRACEPOINT_KERNEL, FTRACE);
    assertThat(ladder.rungs().get(1).why())
        .isEqualTo("needs solisten and tcpstates: solisten fails (solisten: failed to attach BPF programs: -2);"
            + " tcpstates attaches; tcpsynbl fails (tcpsynbl: failed to attach BPF programs: -2)");
    assertThat(ladder.rungs().get(3).works()).isTrue();
    assertThat(ladder.rungs().get(3).chosen()).isFalse();
  }

  private static HostCapabilities.ToolAttach attach(String tool, boolean works) {
    return new HostCapabilities.ToolAttach(tool, works, works ? "attached" : tool + ": failed to attach BPF programs: -2", 300);
  }
}
