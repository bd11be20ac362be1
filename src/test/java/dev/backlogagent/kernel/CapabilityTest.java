package dev.backlogagent.kernel;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class CapabilityTest {

  @Test
  void a_full_mask_of_a_6_x_kernel_names_all_41_capabilities() {
    long mask = Capability.parseMask("000001ffffffffff");
    assertThat(Capability.namesInMask(mask))
        .hasSize(41)
        .startsWith("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH")
        .endsWith("CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE");
    assertThat(Capability.inMask(mask)).containsAll(Capability.NEEDED.keySet());
  }

  @Test
  void an_empty_mask_names_none() {
    assertThat(Capability.namesInMask(Capability.parseMask("0000000000000000"))).isEmpty();
    assertThat(Capability.inMask(0)).isEmpty();
  }

  @Test
  void bit_12_alone_is_cap_net_admin() {
    assertThat(Capability.namesInMask(Capability.parseMask("0000000000001000"))).containsExactly("CAP_NET_ADMIN");
  }

  @Test
  void root_on_the_build_machine_lacks_only_cap_sys_resource() {
    // CapEff of root on the project's VM: bit 24 is cleared.
    long mask = Capability.parseMask("000001fffeffffff");
    assertThat(Capability.namesInMask(mask)).hasSize(40).doesNotContain("CAP_SYS_RESOURCE");
  }

  @Test
  void bits_newer_than_this_build_are_named_by_number() {
    assertThat(Capability.namesInMask(1L << 41 | 1L << 39)).containsExactly("CAP_BPF", "cap_41");
  }

  @Test
  void the_effective_set_is_read_from_the_capeff_line_of_proc_status() {
    String status =
        "Name:\tjava\nCapInh:\t0000000000000000\nCapPrm:\t000001fffeffffff\n"
            + "CapEff:\t0000000000001000\nCapBnd:\t000001fffeffffff\n";
    assertThat(Capability.effectiveMask(status)).contains(0x1000L);
    assertThat(Capability.effectiveMask("Name:\tjava\n")).isEmpty();
  }

  @Test
  void bit_numbers_follow_linux_capability_h() {
    assertThat(Capability.CAP_DAC_READ_SEARCH.bit()).isEqualTo(2);
    assertThat(Capability.CAP_NET_ADMIN.bit()).isEqualTo(12);
    assertThat(Capability.CAP_SYS_PTRACE.bit()).isEqualTo(19);
    assertThat(Capability.CAP_SYS_ADMIN.bit()).isEqualTo(21);
    assertThat(Capability.CAP_SYS_RESOURCE.bit()).isEqualTo(24);
    assertThat(Capability.CAP_PERFMON.bit()).isEqualTo(38);
    assertThat(Capability.CAP_BPF.bit()).isEqualTo(39);
    assertThat(Capability.CAP_CHECKPOINT_RESTORE.bit()).isEqualTo(40);
  }
}
