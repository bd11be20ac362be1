package dev.backlogagent.watch;

import static org.assertj.core.api.Assertions.assertThat;

import dev.backlogagent.decode.TraceEvent;
import dev.backlogagent.kernel.Tier;
import dev.backlogagent.kernel.TracepointSymbols;
import dev.backlogagent.listener.InventoryReader;
import dev.backlogagent.report.TraceLine;
import dev.backlogagent.report.TraceLines;
import dev.backlogagent.testing.KernelTests;
import dev.backlogagent.testing.TestNetns;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;

/** On the real kernel: an event that comes before its listener is in the inventory is still joined to it. */
class ListenerWatchKernelTest {

  @Test
  void aListenCallInANamespaceBornAfterTheLastInventoryReadIsExplainedByThatNamespacesSomaxconn() throws Exception {
    KernelTests.assumeKernel("a listen() call traced before the next inventory read");
    KernelTests.requireRoot();
    KernelTests.requireCommand("bpftrace");
    Path state = Files.createTempFile("requested-backlogs-", ".json");
    Files.delete(state);
    TraceLines lines = new TraceLines(TracepointSymbols.resetReasons());
    List<TraceLine> printed = new CopyOnWriteArrayList<>();
    ListenerWatch.Observer observer = (event, latest) -> {
      if (event instanceof TraceEvent.ListenCall) {
        printed.add(lines.event(event, latest));
      }
    };
    ListenerWatch.Settings settings = new ListenerWatch.Settings(Tier.TRACEPOINT, null, null, Duration.ofSeconds(1),
        100, false, state, InventoryReader.Scope.ALL, key -> true, null);
    try (ListenerWatch watch = ListenerWatch.start(settings, observer)) {
      assertThat(watch.running()).as("programs %s, failures %s", watch.running(), watch.failures())
          .anyMatch(c -> c.name().equals("LISTEN"));
      // The namespace and its listener begin after the watch's first inventory: the line must still name the
      // process and that namespace's somaxconn, from a read made for the event or the next interval's.
      try (TestNetns ns = TestNetns.create("net.core.somaxconn=64")) {
        long inode = ns.inode();
        TestNetns.ListenerProcess listener = ns.startListener("--backlog", "1024");
        long deadline = System.nanoTime() + Duration.ofSeconds(15).toNanos();
        // Read again for the event, or held until the next interval closes (as trace closes one each second).
        long nextInterval = System.nanoTime() + Duration.ofSeconds(1).toNanos();
        while (System.nanoTime() < deadline && listens(printed, inode).isEmpty()) {
          Thread.sleep(100);
          if (System.nanoTime() > nextInterval) {
            watch.closeInterval();
            nextInterval = System.nanoTime() + Duration.ofSeconds(1).toNanos();
          }
        }
        List<TraceLine.Listen> calls = listens(printed, inode);
        assertThat(calls).as("listen lines %s", printed).hasSize(1);
        TraceLine.Listen call = calls.get(0);
        assertThat(call.where().port()).isEqualTo(listener.port());
        assertThat(call.where().pid()).isEqualTo((int) listener.pid());
        assertThat(call.requestedBacklog()).isEqualTo(1024);
        assertThat(call.backlog()).isEqualTo(64).isEqualTo(ns.ss().port(listener.port()).sendQ());
        assertThat(call.truncated()).isTrue();
        assertThat(call.somaxconn()).as("the new namespace's somaxconn, in %s", call).isEqualTo(64);
        assertThat(call.text()).contains("truncated by net.core.somaxconn=64");
        listener.stop();
      }
    } finally {
      Files.deleteIfExists(state);
    }
  }

  private static List<TraceLine.Listen> listens(List<TraceLine> printed, long inode) {
    synchronized (printed) {
      return printed.stream().filter(l -> l instanceof TraceLine.Listen c && c.where().netns() == inode)
          .map(l -> (TraceLine.Listen) l).toList();
    }
  }
}
