package dev.backlogagent.testing;

import static org.junit.jupiter.api.Assertions.fail;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;

/**
 * Guards for tests that need the real kernel: root, a command such as bpftrace or ip. Outside CI such a
 * test is skipped when the machine cannot run it; with {@code BACKLOG_AGENT_REQUIRE_KERNEL_TESTS=true}
 * (which .ci/run sets) the same gap fails the test, so kernel proofs never vanish quietly.
 */
public final class KernelTests {
  private KernelTests() {}

  public static boolean required() {
    return "true".equalsIgnoreCase(System.getProperty("backlog.requireKernel"))
        || "true".equalsIgnoreCase(System.getenv("BACKLOG_AGENT_REQUIRE_KERNEL_TESTS"));
  }

  /** The test needs root (setns, BPF, network namespaces). */
  public static void requireRoot() {
    need("root".equals(System.getProperty("user.name")), "needs root");
  }

  /** The test needs this command on PATH (or in /usr/sbin, /sbin). */
  public static void requireCommand(String command) {
    need(commandPath(command) != null, "needs the command " + command);
  }

  public static Path commandPath(String command) {
    String path = System.getenv().getOrDefault("PATH", "") + ":/usr/sbin:/sbin:/usr/bin:/bin";
    for (String dir : path.split(":")) {
      if (dir.isEmpty()) {
        continue;
      }
      Path candidate = Path.of(dir, command);
      if (Files.isExecutable(candidate)) {
        return candidate;
      }
    }
    return null;
  }

  private static void need(boolean met, String what) {
    if (met) {
      return;
    }
    if (required()) {
      fail("kernel test required (BACKLOG_AGENT_REQUIRE_KERNEL_TESTS) but this machine " + what);
    }
    Assumptions.assumeTrue(false, "skipped: " + what);
  }
}
