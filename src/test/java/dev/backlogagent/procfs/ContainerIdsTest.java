package dev.backlogagent.procfs;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class ContainerIdsTest {
  private static final String ID = "4f3c1d2e9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d";

  @Test
  void dockerUnderSystemdCgroupDriver() {
    assertThat(ContainerIds.fromCgroup("0::/system.slice/docker-" + ID + ".scope\n")).isEqualTo(ID);
  }

  @Test
  void dockerUnderCgroupfsDriverV1() {
    assertThat(ContainerIds.fromCgroup("12:pids:/docker/" + ID + "\n11:cpu:/docker/" + ID + "\n")).isEqualTo(ID);
  }

  @Test
  void containerdUnderKubernetes() {
    assertThat(ContainerIds.fromCgroup(
        "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-containerd-" + ID + ".scope\n"))
        .isEqualTo(ID);
    assertThat(ContainerIds.fromCgroup("0::/kubepods/besteffort/pod1234/" + ID + "\n")).isEqualTo(ID);
  }

  @Test
  void podman() {
    assertThat(ContainerIds.fromCgroup("0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + ID + ".scope/container\n"))
        .isEqualTo(ID);
  }

  @Test
  void systemdNspawnMachineName() {
    assertThat(ContainerIds.fromCgroup("0::/machine.slice/machine-web\\x2d1.scope/payload\n")).isEqualTo("web-1");
  }

  @Test
  void aPlainServiceIsNotInAContainer() {
    assertThat(ContainerIds.fromCgroup("0::/system.slice/nginx.service\n")).isNull();
    assertThat(ContainerIds.fromCgroup("0::/user.slice/user-0.slice/session-1.scope\n")).isNull();
    assertThat(ContainerIds.fromCgroup("")).isNull();
  }
}
