package dev.backlogagent.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The benchmark's per-program labels, for the kernel names both bpftrace dialects give their programs. */
class TracerCostTest {
  private static final String COMBINED = String.join("\n",
      "// ---- handshakes+states ----",
      "tracepoint:sock:inet_sock_set_state",
      "{",
      "}",
      "// ---- accept_wait ----",
      "tracepoint:syscalls:sys_exit_accept,",
      "tracepoint:syscalls:sys_exit_accept4",
      "/args->ret >= 0/",
      "{",
      "}",
      "interval:s:$1",
      "{",
      "}",
      "");

  @Test
  void programsAreLabelledByTheirAttachPointUnderBothDialectsNames() {
    List<TracerCost.AttachPoint> points = TracerCost.attachPoints(COMBINED, "combined", List.of("1"));
    assertThat(points).extracting(TracerCost.AttachPoint::label).containsExactly(
        "handshakes+states tracepoint:sock:inet_sock_set_state", "accept_wait tracepoint:syscalls:sys_exit_accept",
        "accept_wait tracepoint:syscalls:sys_exit_accept4", "accept_wait interval:s:1");
    // bpftrace 0.17: the probe's last part, cut to 15 characters
    Map<Integer, String> old = TracerCost.label(Map.of(
        7, new TracerCost.ProgramStat(7, "tracepoint", "inet_sock_set_s", 0, 0),
        8, new TracerCost.ProgramStat(8, "tracepoint", "sys_exit_accept", 0, 0),
        9, new TracerCost.ProgramStat(9, "perf_event", "1", 0, 0)), points);
    assertThat(old).containsEntry(7, "handshakes+states tracepoint:sock:inet_sock_set_state")
        .containsEntry(8, "accept_wait tracepoint:syscalls:sys_exit_accept").containsEntry(9, "accept_wait interval:s:1");
    // bpftrace 0.23: the whole probe, ':' as '_', and an index
    Map<Integer, String> now = TracerCost.label(Map.of(
        7, new TracerCost.ProgramStat(7, "tracepoint", "tracepoint_sock_inet_sock_set_state_1", 0, 0),
        8, new TracerCost.ProgramStat(8, "tracepoint", "tracepoint_syscalls_sys_exit_accept4_3", 0, 0),
        9, new TracerCost.ProgramStat(9, "perf_event", "interval_s_1_4", 0, 0),
        10, new TracerCost.ProgramStat(10, "tracepoint", "something_else_5", 0, 0)), points);
    assertThat(now).containsEntry(7, "handshakes+states tracepoint:sock:inet_sock_set_state")
        .containsEntry(8, "accept_wait tracepoint:syscalls:sys_exit_accept4").containsEntry(9, "accept_wait interval:s:1")
        .containsEntry(10, "? tracepoint something_else_5");
  }
}
