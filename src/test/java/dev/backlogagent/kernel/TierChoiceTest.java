package dev.backlogagent.kernel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import org.junit.jupiter.api.Test;

class TierChoiceTest {

  private static final HostCapabilities.ProcNetstat NETSTAT = new HostCapabilities.ProcNetstat(true, "readable");
  private static final HostCapabilities.BpftraceBinary BPFTRACE =
      new HostCapabilities.BpftraceBinary(true, "/usr/bin/bpftrace", "v0.17.0", "bpftrace v0.17.0");
  private static final HostCapabilities.Capabilities ALL_CAPS = caps(List.of());
  private static final HostCapabilities.AttachResult WORKS = new HostCapabilities.AttachResult(true, "p", "attached", 40);

  @Test
  void a_distro_kernel_where_kprobes_and_fentry_attach_runs_the_kprobe_tier() {
    TierChoice choice = TierChoice.decide(NETSTAT, BPFTRACE, new HostCapabilities.Attach(WORKS, WORKS, WORKS), ALL_CAPS);
    assertThat(choice.tier()).isEqualTo(Tier.KPROBE);
    assertThat(choice.reason()).contains("kprobes and fentry attach");
  }

  @Test
  void a_kernel_with_kprobes_but_no_fentry_runs_the_kprobe_tier_and_says_fentry_fails() {
    TierChoice choice =
        TierChoice.decide(NETSTAT, BPFTRACE,
            new HostCapabilities.Attach(WORKS, WORKS, fails("kfunc/kretfunc not available for your kernel version.")),
            ALL_CAPS);
    assertThat(choice.tier()).isEqualTo(Tier.KPROBE);
    assertThat(choice.reason()).contains("fentry does not (kfunc/kretfunc not available");
  }

  @Test
  void a_kernel_without_kprobes_runs_the_tracepoint_tier_and_quotes_why() {
    TierChoice choice =
        TierChoice.decide(NETSTAT, BPFTRACE,
            new HostCapabilities.Attach(WORKS, fails("Error attaching probe"), fails("kfunc not available")), ALL_CAPS);
    assertThat(choice.tier()).isEqualTo(Tier.TRACEPOINT);
    assertThat(choice.reason())
        .isEqualTo("tracepoint programs: kprobes are not available on this kernel (Error attaching probe)");
  }

  @Test
  void without_bpftrace_only_counters_remain() {
    HostCapabilities.BpftraceBinary none =
        new HostCapabilities.BpftraceBinary(false, "/nonexistent", null, "the given bpftrace /nonexistent does not exist");
    HostCapabilities.AttachResult notTried = HostCapabilities.AttachResult.notTried("p", "no bpftrace");
    TierChoice choice =
        TierChoice.decide(NETSTAT, none, new HostCapabilities.Attach(notTried, notTried, notTried), ALL_CAPS);
    assertThat(choice.tier()).isEqualTo(Tier.COUNTERS);
    assertThat(choice.reason()).contains("no bpftrace").contains("/nonexistent does not exist");
  }

  @Test
  void a_user_without_bpf_capabilities_gets_counters_and_the_missing_capabilities_named() {
    HostCapabilities.AttachResult refused = fails("bpftrace currently only supports running as the root user.");
    TierChoice choice =
        TierChoice.decide(NETSTAT, BPFTRACE, new HostCapabilities.Attach(refused, refused, refused),
            caps(List.of("CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN")));
    assertThat(choice.tier()).isEqualTo(Tier.COUNTERS);
    assertThat(choice.reason())
        .contains("missing CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN")
        .contains("only supports running as the root user");
  }

  @Test
  void kprobes_without_tracepoints_are_not_enough_for_a_bpf_tier() {
    TierChoice choice =
        TierChoice.decide(NETSTAT, BPFTRACE,
            new HostCapabilities.Attach(fails("tracepoint not found: sock:inet_sock_set_state"), WORKS, WORKS), ALL_CAPS);
    assertThat(choice.tier()).isEqualTo(Tier.COUNTERS);
    assertThat(choice.reason()).contains("tracepoint not found").contains("both BPF tiers also need tracepoints");
  }

  @Test
  void without_proc_net_netstat_nothing_can_be_observed() {
    TierChoice choice =
        TierChoice.decide(new HostCapabilities.ProcNetstat(false, "cannot read /proc/net/netstat: denied"), BPFTRACE,
            new HostCapabilities.Attach(WORKS, WORKS, WORKS), ALL_CAPS);
    assertThat(choice.tier()).isEqualTo(Tier.NONE);
    assertThat(choice.tier().canObserve()).isFalse();
    assertThat(choice.reason()).contains("cannot read /proc/net/netstat");
  }

  @Test
  void tiers_are_named_in_lower_case_and_parsed_back_for_configuration() {
    assertThat(Tier.TRACEPOINT.label()).isEqualTo("tracepoint");
    assertThat(Tier.parse(" Kprobe ")).isEqualTo(Tier.KPROBE);
    assertThatThrownBy(() -> Tier.parse("fentry"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("kprobe, tracepoint, libbpf-tools, ftrace, counters, none");
  }

  private static HostCapabilities.AttachResult fails(String why) {
    return new HostCapabilities.AttachResult(false, "p", why, 40);
  }

  private static HostCapabilities.Capabilities caps(List<String> missing) {
    return new HostCapabilities.Capabilities("0", List.of(), missing, List.of(), null, List.of());
  }
}
