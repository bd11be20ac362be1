package dev.backlogagent.ftrace;

import static org.assertj.core.api.Assertions.assertThat;

import dev.backlogagent.decode.AddressFamily;
import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.decode.TraceEvent;
import dev.backlogagent.kernel.TracepointSymbols;
import dev.backlogagent.listener.Inventory;
import dev.backlogagent.listener.InventoryReader;
import dev.backlogagent.testing.KernelTests;
import dev.backlogagent.testing.Nstat;
import dev.backlogagent.testing.TestNetns;
import dev.backlogagent.testing.TestNetns.ListenerProcess;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The ftrace tier on this kernel, without the rest of the agent: what it sees, how it attributes, how it cleans up. */
class FtraceTierKernelTest {
  private static final Path TRACEFS = Path.of("/sys/kernel/tracing");

  @BeforeAll
  static void kernel() {
    KernelTests.requireRoot();
    KernelTests.requireCommand("ip");
    KernelTests.requireCommand("python3");
    KernelTests.require(Files.isDirectory(TRACEFS.resolve("instances")), "the ftrace tier needs tracefs at " + TRACEFS);
  }

  /** A running tier with what it handed over, and the inventory it attributes by. */
  private static final class Run implements AutoCloseable {
    final List<TraceEvent> events = new CopyOnWriteArrayList<>();
    final AtomicReference<Inventory> inventory = new AtomicReference<>();
    final FtraceTier tier;

    Run(FtraceTier.Caps caps, Integer port) throws Exception {
      inventory.set(InventoryReader.ofHost().read(InventoryReader.Scope.ALL));
      tier = FtraceTier.start(new FtraceTier.Settings(Duration.ofSeconds(60), port, caps, Duration.ofMillis(50), 0),
          events::add, inventory::get);
    }

    Run(FtraceTier.Caps caps) throws Exception {
      this(caps, null);
    }

    Run() throws Exception {
      this(FtraceTier.Caps.DEFAULT);
    }

    long count(TraceEvent.Counted what, ListenerKey key) {
      return events.stream().filter(e -> e instanceof TraceEvent.ListenerCount c && c.what() == what && c.key().equals(key))
          .mapToLong(e -> ((TraceEvent.ListenerCount) e).value()).sum();
    }

    long drops(ListenerKey key, String reason) {
      long number = TracepointSymbols.dropReasons().number(reason);
      return events.stream().filter(e -> e instanceof TraceEvent.ListenerCount c && c.what() == TraceEvent.Counted.DROPS
          && c.key().equals(key) && c.detail().equals(Long.toString(number)))
          .mapToLong(e -> ((TraceEvent.ListenerCount) e).value()).sum();
    }

    List<TraceEvent.ListenCall> listens(int port) {
      return events.stream().filter(e -> e instanceof TraceEvent.ListenCall l && l.key().port() == port)
          .map(e -> (TraceEvent.ListenCall) e).toList();
    }

    @Override
    public void close() {
      tier.close();
    }
  }

  /**
   * A port no listener of any namespace uses (below the ephemeral range, where port-0 listeners land):
   * attribution by port must find one namespace, even on a host where others listen on thousands of ports.
   */
  private static int portFreeEverywhere() throws Exception {
    java.util.Set<Integer> used = new java.util.HashSet<>();
    InventoryReader.ofHost().read(InventoryReader.Scope.ALL).listeners().forEach(l -> used.add(l.key().port()));
    java.util.Random random = new java.util.Random();
    for (int i = 0; i < 1000; i++) {
      int port = 20_000 + random.nextInt(12_000);
      if (!used.contains(port)) {
        return port;
      }
    }
    throw new IllegalStateException("no free port between 20000 and 32000");
  }

  private static ListenerKey key(TestNetns ns, int port) throws Exception {
    return new ListenerKey(ns.inode(), AddressFamily.IPV4, "127.0.0.1", port);
  }

  @Test
  void handshakesAndListenCallsLandOnTheirListenerInTheirOwnNamespace() throws Exception {
    try (TestNetns a = TestNetns.create("net.core.somaxconn=64"); TestNetns b = TestNetns.create(); Run run = new Run()) {
      ListenerProcess inA = a.startListener("--backlog", "1024", "--connect", "6");
      ListenerProcess inB = b.startListener("--backlog", "16", "--connect", "3");
      Thread.sleep(600);
      run.close(); // a last drain, then the counts are final
      assertThat(run.count(TraceEvent.Counted.HANDSHAKES, key(a, inA.port()))).isEqualTo(6);
      assertThat(run.count(TraceEvent.Counted.HANDSHAKES, key(b, inB.port()))).isEqualTo(3);
      assertThat(run.listens(inA.port())).singleElement().satisfies(l -> {
        assertThat(l.key()).isEqualTo(key(a, inA.port()));
        assertThat(l.pid()).isEqualTo(inA.pid());
        assertThat(l.comm()).startsWith("python3");
        assertThat(l.requestedBacklog()).isEqualTo(1024);
        assertThat(l.backlog()).isEqualTo(64).isEqualTo(a.ss().port(inA.port()).sendQ());
      });
      assertThat(run.listens(inB.port())).singleElement().satisfies(l -> assertThat(l.backlog()).isEqualTo(16));
    }
  }

  /**
   * Loopback never crosses namespaces, and its receive path runs in the sending task: a port listened on in
   * two namespaces is told apart by the namespace of the client's task.
   */
  @Test
  void aLoopbackPortListenedOnInTwoNamespacesIsToldApartByTheSendingTask() throws Exception {
    int port = 47_123; // inside the test namespaces only
    try (TestNetns a = TestNetns.create(); TestNetns b = TestNetns.create(); Run run = new Run()) {
      b.startListener("--port", Integer.toString(port), "--backlog", "16");
      Thread.sleep(300); // b's listener is known before a's handshakes come
      a.startListener("--port", Integer.toString(port), "--backlog", "16", "--connect", "4");
      Thread.sleep(600);
      run.close();
      assertThat(run.count(TraceEvent.Counted.HANDSHAKES, key(a, port))).isEqualTo(4);
      assertThat(run.count(TraceEvent.Counted.HANDSHAKES, key(b, port))).isZero();
    }
  }

  /**
   * bpf/test/ack_overflow.sh's recipe: a token bucket on lo paces packets so that SYNs are admitted before the
   * accept queue fills and their third ACKs overflow it (on plain loopback a full queue refuses the SYN
   * itself, which leaves no trace event at all).
   */
  @Test
  void thirdAcksOverflowingTheAcceptQueueShowListenOverflowDropsAndSynAckRetransmitsOnItsListener() throws Exception {
    KernelTests.requireCommand("tc");
    try (TestNetns ns = TestNetns.create(); Run run = new Run()) {
      ns.exec("tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", "64kbit", "burst", "100", "limit", "200000");
      Nstat before = ns.nstat();
      // The paced third ACKs are handled in the qdisc's timer, not in the client's task: attributed by port.
      ListenerProcess server = ns.startListener("--port", Integer.toString(portFreeEverywhere()), "--backlog", "4",
          "--connect-later");
      server.connect(3);
      Thread.sleep(1_000);
      server.connect(10);
      Thread.sleep(3_500); // SYN-ACKs are retransmitted after 1 s, then 3 s
      run.close();
      Nstat after = ns.nstat();
      ListenerKey key = key(ns, server.port());
      long overflowDrops = run.drops(key, "TCP_LISTEN_OVERFLOW");
      assertThat(overflowDrops).isPositive()
          .isLessThanOrEqualTo(after.get("TcpExtListenOverflows") - before.get("TcpExtListenOverflows"));
      assertThat(run.count(TraceEvent.Counted.SYNACK_RETRANSMITS, key)).isPositive();
      assertThat(run.count(TraceEvent.Counted.HANDSHAKES, key)).isEqualTo(5); // backlog + 1 fit
      assertThat(run.tier.failures()).isEmpty();
      assertThat(run.tier.stats().lost()).isZero();
    }
  }

  @Test
  void pastTheCapRecordsAreCountedAsSkippedNotDecoded() throws Exception {
    FtraceTier.Caps caps = new FtraceTier.Caps(256, 3, 100, 100, 50);
    int port = portFreeEverywhere();
    // Narrowed to the port in the kernel's filter, so that no other listener of this shared host spends the cap.
    try (TestNetns ns = TestNetns.create(); Run run = new Run(caps, port)) {
      ListenerProcess server = ns.startListener("--port", Integer.toString(port), "--backlog", "64", "--connect", "10");
      Thread.sleep(600);
      run.close();
      long births = 1; // the listener's own CLOSE -> LISTEN counts against the same event's cap
      assertThat(run.count(TraceEvent.Counted.HANDSHAKES, key(ns, server.port()))).isEqualTo(3 - births);
      assertThat(run.tier.stats().skipped()).isEqualTo(10 - 3 + births);
    }
  }

  /**
   * resets.bt's limits hold on this tier too: 130 connects refused by 130 closed ports in one interval make 50
   * reset lines, one per port; the other 80 are counted, 64 ports under their own endpoint and the last 16
   * under the namespace's 0.0.0.0:0 (a storm of aborting clients draws such resets from a new port each time).
   */
  @Test
  void resetsPastFiftyEndpointsAreCountedAndPast64MoreCountedUnderTheirNamespace() throws Exception {
    try (TestNetns ns = TestNetns.create(); Run run = new Run()) {
      ns.exec("python3", "-c", """
          import socket, time
          for port in range(40000, 40130):
              s = socket.socket()
              try:
                  s.connect(("127.0.0.1", port))
              except ConnectionRefusedError:
                  pass
              s.close()
          time.sleep(1)  # the resets are placed by the sending task's namespace while it runs
          """);
      run.close();
      long netns = ns.inode();
      List<ListenerKey> lines = run.events.stream()
          .filter(e -> e instanceof TraceEvent.ResetSent r && r.key() != null && r.key().netns() == netns)
          .map(e -> ((TraceEvent.ResetSent) e).key()).toList();
      assertThat(lines).hasSize(FtraceTier.RESET_LINES).doesNotHaveDuplicates()
          .allSatisfy(k -> assertThat(k.port()).isBetween(40000, 40129));
      List<TraceEvent.ListenerCount> counted = run.events.stream()
          .filter(e -> e instanceof TraceEvent.ListenerCount c && c.what() == TraceEvent.Counted.RESETS_SUPPRESSED
              && c.key() != null && c.key().netns() == netns)
          .map(e -> (TraceEvent.ListenerCount) e).toList();
      assertThat(counted.stream().mapToLong(TraceEvent.ListenerCount::value).sum()).isEqualTo(130 - FtraceTier.RESET_LINES);
      assertThat(counted.stream().map(TraceEvent.ListenerCount::key).filter(k -> k.port() != 0).distinct().count())
          .isEqualTo(FtraceTier.RESET_KEYS);
      assertThat(counted.stream().filter(c -> c.key().port() == 0).mapToLong(TraceEvent.ListenerCount::value).sum())
          .isEqualTo(130 - FtraceTier.RESET_LINES - FtraceTier.RESET_KEYS);
    }
  }

  @Test
  void theInstanceIsTheAgentsOwnLeavesTheGlobalBufferAloneAndIsGoneAfterClose() throws Exception {
    Path globalEnable = TRACEFS.resolve("events/sock/inet_sock_set_state/enable");
    String globalBefore = TraceInstance.read(globalEnable).strip();
    Path instance;
    try (Run run = new Run()) {
      instance = TRACEFS.resolve("instances").resolve(run.tier.instanceName());
      assertThat(run.tier.instanceName()).startsWith("backlog-agent-" + ProcessHandle.current().pid() + "-");
      assertThat(instance).isDirectory();
      assertThat(TraceInstance.read(instance.resolve("events/sock/inet_sock_set_state/enable")).strip()).isEqualTo("1");
      assertThat(TraceInstance.read(instance.resolve("events/sock/inet_sock_set_state/filter"))).contains("newstate == 10");
      assertThat(TraceInstance.read(globalEnable).strip()).isEqualTo(globalBefore);
    }
    assertThat(instance).doesNotExist();
  }

  @Test
  void twoTiersSideBySideEachSeeEveryHandshakeAndClosingOneLeavesTheOther() throws Exception {
    try (TestNetns ns = TestNetns.create(); Run first = new Run(); Run second = new Run()) {
      assertThat(first.tier.instanceName()).isNotEqualTo(second.tier.instanceName());
      ListenerProcess server = ns.startListener("--backlog", "64", "--connect", "5", "--connect-later");
      Thread.sleep(400);
      first.close();
      server.connect(3);
      Thread.sleep(400);
      second.close();
      assertThat(first.count(TraceEvent.Counted.HANDSHAKES, key(ns, server.port()))).isEqualTo(5);
      assertThat(second.count(TraceEvent.Counted.HANDSHAKES, key(ns, server.port()))).isEqualTo(8);
    }
  }

  @Test
  void anInstanceLeftByAKilledAgentIsRemovedAtTheNextStartAndALiveOnesIsKept() throws Exception {
    List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-XX:+UseSerialGC", "-Xmx96m", "-cp", System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")),
        "dev.backlogagent.cli.BacklogAgent", "trace", "--tier", "ftrace", "--duration", "60"));
    Process agent = new ProcessBuilder(command).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
    Path left;
    try (BufferedReader err = new BufferedReader(new InputStreamReader(agent.getErrorStream(), StandardCharsets.UTF_8))) {
      for (String line = err.readLine(); line != null && !line.contains("tracing at tier"); line = err.readLine()) {
        // wait until it traces
      }
      try (var instances = Files.list(TRACEFS.resolve("instances"))) {
        left = instances.filter(p -> p.getFileName().toString().startsWith("backlog-agent-" + agent.pid() + "-"))
            .findFirst().orElseThrow();
      }
      agent.destroyForcibly(); // SIGKILL: no hook runs
      assertThat(agent.waitFor(10, TimeUnit.SECONDS)).isTrue();
    }
    assertThat(left).isDirectory();
    Path recycled = TRACEFS.resolve("instances").resolve("backlog-agent-" + ProcessHandle.current().pid() + "-1-abc");
    Files.createDirectory(recycled); // our pid, but another start time: a dead agent whose pid was reused
    TraceInstance alive = TraceInstance.create(TRACEFS); // a live agent's (this JVM's)
    try (Run run = new Run()) {
      assertThat(run.tier.removedAtStart()).contains(left.getFileName().toString(), recycled.getFileName().toString());
      assertThat(left).doesNotExist();
      assertThat(recycled).doesNotExist();
      assertThat(alive.directory()).isDirectory();
    } finally {
      alive.close();
      Files.deleteIfExists(recycled);
    }
    assertThat(alive.directory()).doesNotExist();
  }
}
