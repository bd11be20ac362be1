package dev.backlogagent.testing;

import java.nio.file.Path;
import java.util.Optional;
import dev.backlogagent.config.FileTrust;
import dev.backlogagent.kernel.ChildProcess;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;

/**
 * Guards for tests that need the real kernel (root, bpftrace, ...): where a need is not met they skip, but
 * when the system property {@value #REQUIRE_PROPERTY} is "true" (CI sets it through the environment variable
 * BACKLOG_AGENT_REQUIRE_KERNEL_TESTS) they fail, so that a kernel test can never pass by not running.
 */
public final class KernelTests {

  /** The system property that turns every skip of a kernel test into a failure. */
  public static final String REQUIRE_PROPERTY = "backlog.requireKernel";


  private KernelTests() {}

  /** Needs root and bpftrace; {@code why} says what the test proves, for the skip or failure message. */
  public static void assumeKernel(String why) {
    requireRoot(why);
    requireCommand("bpftrace", why);
  }

  /** Needs an effective user id of 0. */
  public static void requireRoot() {
    requireRoot("a kernel test");
  }

  /** Needs the executable {@code name} on PATH or in the system directories; returns where it is. */
  public static Path requireCommand(String name) {
    return requireCommand(name, "a kernel test");
  }

  /** Needs the executable {@code name}; {@code why} says what the test proves, for the skip or failure message. */
  public static Path requireCommand(String name, String why) {
    Optional<Path> found = findCommand(name);
    require(found.isPresent(), why + " needs " + name + " (not on PATH, nor in the system directories)");
    return found.orElseThrow();
  }

  /** Skips the test (or fails it when kernel tests are required) unless {@code condition} holds. */
  public static void require(boolean condition, String unmet) {
    if (condition) {
      return;
    }
    if (required()) {
      Assertions.fail(unmet + " (" + REQUIRE_PROPERTY + "=true turns this skip into a failure)");
    }
    Assumptions.abort(unmet);
  }

  /** Whether kernel tests must run here rather than skip. */
  public static boolean required() {
    return "true".equalsIgnoreCase(System.getProperty(REQUIRE_PROPERTY, "").strip());
  }

  /** The effective user id of this JVM, from /proc/self/status; -1 when it cannot be read. */
  public static int effectiveUid() {
    return FileTrust.effectiveUid(); // the agent's own reader: tests and product agree on who is root
  }

  /** Where the executable {@code name} is, found as the agent finds its own tools. */
  public static Optional<Path> findCommand(String name) {
    return ChildProcess.findExecutable(name);
  }

  private static void requireRoot(String why) {
    require(effectiveUid() == 0, why + " needs root (effective uid " + effectiveUid() + ")");
  }
}
