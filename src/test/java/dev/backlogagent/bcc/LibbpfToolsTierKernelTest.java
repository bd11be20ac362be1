package dev.backlogagent.bcc;

import static org.assertj.core.api.Assertions.assertThat;

import dev.backlogagent.bpf.Concern;
import dev.backlogagent.decode.AddressFamily;
import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.decode.TraceEvent;
import dev.backlogagent.listener.Inventory;
import dev.backlogagent.listener.InventoryReader;
import dev.backlogagent.testing.KernelTests;
import dev.backlogagent.testing.TestNetns;
import dev.backlogagent.testing.TestNetns.ListenerProcess;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The libbpf-tools tier on this kernel: tcpstates runs (tracepoint), solisten cannot (it needs kprobes). */
class LibbpfToolsTierKernelTest {

  @BeforeAll
  static void kernel() {
    KernelTests.requireRoot();
    KernelTests.requireCommand("tcpstates", "the libbpf-tools tier");
    KernelTests.requireCommand("python3");
  }

  @Test
  void tcpstatesRestrictedToTheListeningPortsCountsEachHandshakeOnItsListener() throws Exception {
    try (TestNetns ns = TestNetns.create()) {
      ListenerProcess server = ns.startListener("--backlog", "64", "--connect-later");
      AtomicReference<Inventory> inventory = new AtomicReference<>(InventoryReader.ofHost().read(InventoryReader.Scope.ALL));
      List<TraceEvent> events = new CopyOnWriteArrayList<>();
      try (LibbpfToolsTier tier = LibbpfToolsTier.start(new LibbpfToolsTier.Settings(Duration.ofSeconds(60), 200_000,
          Duration.ofSeconds(30)), events::add, inventory::get)) {
        assertThat(tier.running()).contains(Concern.HANDSHAKES);
        assertThat(tier.tracedPorts()).contains(server.port());
        server.connect(6);
        Thread.sleep(1_000);
        ListenerKey key = new ListenerKey(ns.inode(), AddressFamily.IPV4, "127.0.0.1", server.port());
        long handshakes = events.stream().filter(e -> e instanceof TraceEvent.ListenerCount c
            && c.what() == TraceEvent.Counted.HANDSHAKES && c.key().equals(key)).mapToLong(e -> ((TraceEvent.ListenerCount) e).value()).sum();
        assertThat(handshakes).isEqualTo(6);
        assertThat(tier.stats().malformed()).isZero();
        if (!Files.exists(Path.of("/sys/kernel/tracing/kprobe_events"))) {
          // No kprobes on this kernel: solisten is reported with its own error, not silently missing.
          assertThat(tier.failures()).anySatisfy(f -> {
            assertThat(f.concern()).isEqualTo(Concern.LISTEN);
            assertThat(f.reason()).contains("failed to attach");
          });
        }
      }
      assertThat(ProcessHandle.allProcesses().filter(p -> p.info().command().orElse("").endsWith("/tcpstates")
          && p.parent().map(pp -> pp.pid() == ProcessHandle.current().pid()).orElse(false)).count()).isZero();
    }
  }
}
