package dev.backlogagent.testing;

import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.opentest4j.AssertionFailedError;
import org.opentest4j.TestAbortedException;

class KernelTestsTest {

  private String saved;

  @BeforeEach
  void save() {
    saved = System.getProperty(KernelTests.REQUIRE_PROPERTY);
  }

  @AfterEach
  void restore() {
    if (saved == null) {
      System.clearProperty(KernelTests.REQUIRE_PROPERTY);
    } else {
      System.setProperty(KernelTests.REQUIRE_PROPERTY, saved);
    }
  }

  @Test
  void an_unmet_need_skips_the_test_on_a_developer_machine() {
    System.clearProperty(KernelTests.REQUIRE_PROPERTY);
    assertThatThrownBy(() -> KernelTests.require(false, "needs a unicorn"))
        .isInstanceOf(TestAbortedException.class)
        .hasMessageContaining("needs a unicorn");
  }

  @Test
  void an_unmet_need_fails_the_test_when_ci_requires_kernel_tests() {
    System.setProperty(KernelTests.REQUIRE_PROPERTY, "true");
    assertThatThrownBy(() -> KernelTests.require(false, "needs a unicorn"))
        .isInstanceOf(AssertionFailedError.class)
        .hasMessageContaining("needs a unicorn")
        .hasMessageContaining(KernelTests.REQUIRE_PROPERTY + "=true");
  }

  @Test
  void an_unresolved_maven_property_does_not_count_as_required() {
    // What surefire passes when BACKLOG_AGENT_REQUIRE_KERNEL_TESTS is not set.
    System.setProperty(KernelTests.REQUIRE_PROPERTY, "${env.BACKLOG_AGENT_REQUIRE_KERNEL_TESTS}");
    assertThatThrownBy(() -> KernelTests.require(false, "needs a unicorn")).isInstanceOf(TestAbortedException.class);
  }

  @Test
  void a_met_need_lets_the_test_run() {
    System.setProperty(KernelTests.REQUIRE_PROPERTY, "true");
    assertThatCode(() -> KernelTests.require(true, "needs nothing")).doesNotThrowAnyException();
    assertThatCode(() -> KernelTests.requireCommand("sh")).doesNotThrowAnyException();
  }
}
