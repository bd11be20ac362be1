package dev.backlogagent.bench;

import static org.assertj.core.api.Assertions.assertThat;

import dev.backlogagent.listener.Inventory;
import dev.backlogagent.listener.InventoryReader;
import dev.backlogagent.testing.Fixtures;
import dev.backlogagent.testing.KernelTests;
import dev.backlogagent.testing.TestNetns;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * How long one full inventory takes as namespaces and listeners grow, against ss over the same namespaces.
 * Prints figures; asserts only that the inventory saw every listener. Run: {@code mvn -Pbench verify}.
 */
@Tag("bench")
class InventoryBenchmark {
  private static final int LISTENERS_PER_NAMESPACE = 200;
  private static final int[] NAMESPACE_COUNTS = {10, 25, 50};
  private static final int ROUNDS = 5;

  @Test
  void inventoryOf50NamespacesOf200ListenersEach() throws Exception {
    KernelTests.requireRoot();
    List<TestNetns> namespaces = new ArrayList<>();
    List<Process> holders = new ArrayList<>();
    try {
      InventoryReader reader = InventoryReader.ofHost();
      reader.read(InventoryReader.Scope.ALL); // warm up classes and JNA
      System.out.printf("%n%-10s %-10s %-14s %-14s %-12s %-10s%n",
          "netns", "listeners", "agent ms", "ss ms", "agent/ss", "us/listener");
      for (int target : NAMESPACE_COUNTS) {
        while (namespaces.size() < target) {
          TestNetns ns = TestNetns.create();
          namespaces.add(ns);
          Process p = new ProcessBuilder("ip", "netns", "exec", ns.name(), "python3",
              Fixtures.path("many_listeners.py").toString(), Integer.toString(LISTENERS_PER_NAMESPACE))
              .redirectErrorStream(true).start();
          holders.add(p);
          String ready = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8)).readLine();
          assertThat(ready).isEqualTo("ready");
        }
        int expected = target * LISTENERS_PER_NAMESPACE;
        long best = Long.MAX_VALUE;
        for (int round = 0; round < ROUNDS; round++) {
          long start = System.nanoTime();
          Inventory inventory = reader.read(InventoryReader.Scope.ALL);
          best = Math.min(best, System.nanoTime() - start);
          long ours = inventory.listeners().stream().filter(l -> l.key().address().equals("127.0.0.1")
              && namespaces.stream().anyMatch(n -> inode(n) == l.key().netns())).count();
          assertThat(ours).isEqualTo(expected);
        }
        // Baseline in the same run: ss -ltnm over the same namespaces (one process per namespace).
        long ssBest = Long.MAX_VALUE;
        for (int round = 0; round < 2; round++) {
          long start = System.nanoTime();
          TestNetns.run("ip", "-all", "netns", "exec", "ss", "-ltnmH");
          ssBest = Math.min(ssBest, System.nanoTime() - start);
        }
        System.out.printf("%-10d %-10d %-14.1f %-14.1f %-12.2f %-10.1f%n", target, expected,
            best / 1e6, ssBest / 1e6, (double) best / ssBest, best / 1e3 / expected);
      }
    } finally {
      for (Process p : holders) {
        p.destroyForcibly();
      }
      for (TestNetns ns : namespaces) {
        ns.close();
      }
    }
  }

  private static long inode(TestNetns ns) {
    try {
      return ns.inode();
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }
}
