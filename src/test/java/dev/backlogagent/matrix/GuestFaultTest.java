package dev.backlogagent.matrix;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** Which guest failures the matrix runs again: only the emulator's text-patching oops, never a verdict. */
class GuestFaultTest {
  @Test
  void theInt3OopsThatEndsInAPanicIsTheEmulatorsAndAnythingElseIsNot() {
    // d13's console in a CI rehearsal (6.12 under TCG, 2 vCPUs), between the tracepoint phase and the next doctor
    String oops = String.join("\n",
        "PHASE tracepoint {\"options\": [\"--tier\", \"tracepoint\", \"--states\"], \"status\": 130}",
        "[  236.831797] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI",
        "[  236.833668] Call Trace:",
        "[  236.835564] Oops: int3: 0000 [#2] PREEMPT SMP NOPTI",
        "[  236.835812] Kernel panic - not syncing: Fatal exception in interrupt");
    assertThat(KernelMatrixTest.emulatorTextPatchingFault(oops)).isTrue();
    assertThat(KernelMatrixTest.emulatorTextPatchingFault(
        "d12  tracepoint  accept overflow        FAILED   drops agent 41, ListenOverflows 37, ss d41, pid 556")).isFalse();
    assertThat(KernelMatrixTest.emulatorTextPatchingFault("[  12.1] Kernel panic - not syncing: VFS: Unable to mount root fs"))
        .isFalse();
  }
}
