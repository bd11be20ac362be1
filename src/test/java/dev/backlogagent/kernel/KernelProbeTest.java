package dev.backlogagent.kernel;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

class KernelProbeTest {

  @Test
  void tracefs_is_found_where_bpftrace_looks_for_it() {
    String mounts =
        "sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0\n"
            + "nodev /sys/kernel/tracing tracefs rw,relatime 0 0\n";
    assertThat(KernelProbe.tracefsMountPoint(mounts)).contains("/sys/kernel/tracing");
  }

  @Test
  void tracefs_under_debugfs_counts_too() {
    String mounts =
        "debugfs /sys/kernel/debug debugfs rw,relatime 0 0\n"
            + "tracefs /sys/kernel/debug/tracing tracefs rw,relatime 0 0\n";
    assertThat(KernelProbe.tracefsMountPoint(mounts)).contains("/sys/kernel/debug/tracing");
  }

  @Test
  void tracefs_mounted_elsewhere_or_not_at_all_is_not_found() {
    assertThat(KernelProbe.tracefsMountPoint("nodev /mnt/my\\040tracing tracefs rw 0 0\n")).isEmpty();
    assertThat(KernelProbe.tracefsMountPoint("proc /proc proc rw 0 0\n")).isEmpty();
  }

  @Test
  void an_integer_sysctl_reads_whole_although_its_file_size_is_zero() throws Exception {
    // Files.readString reads "4" here: the JDK reads one byte first, and the kernel answers nothing at offset 1.
    Path somaxconn = Path.of("/proc/sys/net/core/somaxconn");
    assertThat(Files.size(somaxconn)).isZero();
    ChildProcess.Exit cat = ChildProcess.run("test-cat", List.of("cat", somaxconn.toString()), Duration.ofSeconds(10));
    assertThat(KernelProbe.readProcFile(somaxconn)).isEqualTo(cat.stdout()).matches("\\d+\n");
  }
}
