package dev.backlogagent.kernel;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.junit.jupiter.api.Test;

class BpftraceTest {

  @Test
  void the_version_is_read_from_bpftrace_dash_dash_version() throws IOException {
    assertThat(Bpftrace.parseVersion(recorded("version-0.17.stdout"))).contains("v0.17.0");
    assertThat(Bpftrace.parseVersion("bpftrace v0.21.2\n")).contains("v0.21.2");
    assertThat(Bpftrace.parseVersion("bpftrace v0.23.0-rc1\n")).contains("v0.23.0-rc1");
    assertThat(Bpftrace.parseVersion("bpftrace 0.9.4\n")).contains("0.9.4");
    assertThat(Bpftrace.parseVersion("usage: bpftrace [options]\n")).isEmpty();
  }

  @Test
  void a_kprobe_on_a_kernel_without_kprobes_fails_with_the_attach_error_and_its_cause() throws IOException {
    assertThat(Bpftrace.failureReason(recorded("kprobe-without-kprobes.stderr"), 255))
        .isEqualTo(
            "Error attaching probe: 'kprobe:tcp_v4_syn_recv_sock': "
                + "create_probe_event: open(/sys/kernel/tracing/kprobe_events): No such file or directory");
  }

  @Test
  void a_kfunc_on_a_kernel_without_fentry_says_kfunc_is_not_available() throws IOException {
    assertThat(Bpftrace.failureReason(recorded("kfunc-without-fentry.stderr"), 1))
        .isEqualTo("kfunc/kretfunc not available for your kernel version.");
  }

  @Test
  void bpftrace_0_17_does_not_know_the_fentry_spelling() throws IOException {
    assertThat(Bpftrace.failureReason(recorded("fentry-spelling-on-0.17.stderr"), 134))
        .isEqualTo("Invalid probe type made it to attachpoint parser");
  }

  @Test
  void a_tracepoint_without_tracefs_is_not_found() throws IOException {
    assertThat(Bpftrace.failureReason(recorded("tracepoint-without-tracefs.stderr"), 1))
        .isEqualTo("tracepoint not found: sock:inet_sock_set_state");
  }

  @Test
  void bpftrace_0_17_refuses_to_run_as_another_user_than_root() throws IOException {
    assertThat(Bpftrace.failureReason(recorded("not-root.stderr"), 1))
        .isEqualTo("bpftrace currently only supports running as the root user.");
  }

  @Test
  void the_memlock_notice_is_the_reason_only_when_nothing_else_was_said() throws IOException {
    assertThat(Bpftrace.failureReason(recorded("tracepoint-attached.stderr"), 1))
        .startsWith("Unknown error -1: couldn't set RLIMIT_MEMLOCK");
  }

  @Test
  void a_silent_failure_reports_its_exit_status_or_signal() {
    assertThat(Bpftrace.failureReason("", 1)).isEqualTo("bpftrace exited with status 1 without a message");
    assertThat(Bpftrace.failureReason("\n", 137)).isEqualTo("bpftrace was killed by signal 9 without a message");
  }

  @Test
  void a_run_that_timed_out_says_so() {
    ChildProcess.Exit exit = new ChildProcess.Exit(-1, "", "", true, Duration.ofSeconds(15));
    assertThat(Bpftrace.failureReason(exit)).isEqualTo("bpftrace did not exit within 15 s and was killed");
  }

  private static String recorded(String name) throws IOException {
    try (InputStream in = BpftraceTest.class.getResourceAsStream("/bpftrace/" + name)) {
      assertThat(in).as("test resource bpftrace/%s", name).isNotNull();
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
  }
}
