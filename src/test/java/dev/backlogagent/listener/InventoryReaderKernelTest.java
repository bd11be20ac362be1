package dev.backlogagent.listener;

import static org.assertj.core.api.Assertions.assertThat;

import dev.backlogagent.decode.AddressFamily;
import dev.backlogagent.procfs.NetNamespaceHandle;
import dev.backlogagent.procfs.NetNamespaces;
import dev.backlogagent.procfs.Processes;
import dev.backlogagent.testing.KernelTests;
import dev.backlogagent.testing.Nstat;
import dev.backlogagent.testing.SsListeners;
import dev.backlogagent.testing.TestNetns;
import dev.backlogagent.testing.TestNetns.ListenerProcess;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The inventory on real sockets in namespaces made by the test, checked against ss and nstat there. */
class InventoryReaderKernelTest {

  @BeforeAll
  static void kernel() {
    KernelTests.requireRoot();
    KernelTests.requireCommand("ip");
    KernelTests.requireCommand("ss");
    KernelTests.requireCommand("nstat");
    KernelTests.requireCommand("python3");
  }

  private static Inventory read(TestNetns ns) throws Exception {
    return InventoryReader.ofHost().read(new InventoryReader.Scope(ns.inode(), null));
  }

  private static Listener only(Inventory inventory, int port) {
    List<Listener> matching = inventory.listeners().stream().filter(l -> l.key().port() == port).toList();
    assertThat(matching).as("listeners on port %d", port).hasSize(1);
    return matching.get(0);
  }

  @Test
  void aListenerWhoseQueueIsFullIsFlaggedFullAndItsDropsMatchSsAndNstat() throws Exception {
    try (TestNetns ns = TestNetns.create()) {
      ListenerProcess server = ns.startListener("--backlog", "4", "--connect", "40", "--connect-later");
      Inventory inventory = read(ns);
      SsListeners.Row ss = ns.ss().port(server.port());
      Nstat nstat = ns.nstat();

      Listener l = only(inventory, server.port());
      assertThat(l.queue()).isEqualTo(ss.recvQ()).isEqualTo(5);
      assertThat(l.backlog()).isEqualTo(ss.sendQ()).isEqualTo(4);
      assertThat(l.drops()).isEqualTo(ss.drops()).isPositive();
      assertThat(l.flags()).contains(ListenerFlag.FULL).doesNotContain(ListenerFlag.DROPPING);
      assertThat(l.processes()).singleElement().satisfies(p -> {
        assertThat(p.pid()).isEqualTo(server.pid());
        assertThat(p.comm()).startsWith("python3");
        assertThat(p.cmdline()).contains("listener.py").contains("--backlog 4");
      });
      NetNamespace namespace = inventory.namespace(ns.inode()).orElseThrow();
      assertThat(namespace.counters().listenOverflows()).isEqualTo(nstat.get("TcpExtListenOverflows")).isPositive();
      assertThat(namespace.counters().listenDrops()).isEqualTo(nstat.get("TcpExtListenDrops"));
      assertThat(namespace.counters().reqqFullDrops()).isEqualTo(nstat.get("TcpExtTCPReqQFullDrop"));
      assertThat(namespace.counters().reqqFullCookies()).isEqualTo(nstat.get("TcpExtTCPReqQFullDoCookies"));
      assertThat(namespace.counters().syncookiesSent()).isEqualTo(nstat.get("TcpExtSyncookiesSent"));

      // More connections to the full queue: the next look flags the listener as dropping.
      server.connect(10);
      Inventory later = read(ns).comparedWith(inventory);
      Listener again = only(later, server.port());
      assertThat(again.drops()).isGreaterThan(l.drops()).isEqualTo(ns.ss().port(server.port()).drops());
      assertThat(again.flags()).contains(ListenerFlag.FULL, ListenerFlag.DROPPING);
    }
  }

  @Test
  void aListenerAsking1024InANamespaceWithSomaxconn64ReportsBacklog64AtSomaxconnAndTruncatedOnceTheRequestIsKnown()
      throws Exception {
    try (TestNetns ns = TestNetns.create("net.core.somaxconn=64")) {
      ListenerProcess server = ns.startListener("--backlog", "1024");
      Listener l = only(read(ns), server.port());
      assertThat(l.backlog()).isEqualTo(64).isEqualTo(ns.ss().port(server.port()).sendQ());
      assertThat(l.requestedBacklog()).isNull();
      assertThat(l.flags()).containsExactly(ListenerFlag.AT_SOMAXCONN);
      assertThat(read(ns).namespace(ns.inode()).orElseThrow().sysctls().somaxconn()).isEqualTo(64);

      // Once BPF has seen the listen(1024) call, the same listener is flagged truncated.
      // The inventory asks by socket, with the processes holding it (the book ties a call to them).
      RequestedBacklogs seen = socket -> socket.socket().equals(l.socket())
          && socket.holders().contains((int) server.pid()) ? 1024L : null;
      Inventory withRequests =
          InventoryReader.ofHost(seen).read(new InventoryReader.Scope(ns.inode(), server.port()));
      Listener known = only(withRequests, server.port());
      assertThat(known.requestedBacklog()).isEqualTo(1024);
      assertThat(known.flags()).containsExactlyInAnyOrder(ListenerFlag.AT_SOMAXCONN, ListenerFlag.TRUNCATED);
    }
  }

  @Test
  void anIpv6ListenerIsReportedWithItsFamilyAndCompressedAddress() throws Exception {
    try (TestNetns ns = TestNetns.create()) {
      ListenerProcess server = ns.startListener("--family", "6", "--host", "::1", "--backlog", "7");
      Listener l = only(read(ns), server.port());
      assertThat(l.key().family()).isEqualTo(AddressFamily.IPV6);
      assertThat(l.key().address()).isEqualTo("::1").isEqualTo(ns.ss().port(server.port()).address());
      assertThat(l.backlog()).isEqualTo(7);
    }
  }

  @Test
  void aSocketSharedByAParentAndItsForkedChildListsBothAsOwners() throws Exception {
    try (TestNetns ns = TestNetns.create()) {
      ListenerProcess server = ns.startListener("--fork");
      Listener l = only(read(ns), server.port());
      assertThat(l.processes()).extracting(p -> (long) p.pid())
          .containsExactlyInAnyOrder(server.pid(), server.childPid());
    }
  }

  @Test
  void aProcessInAContainersCgroupIsTiedToThatContainersId() throws Exception {
    String id = "c0ffee" + "0123456789abcdef".repeat(3) + "0123456789";
    // A cgroup named the way docker's systemd driver names it; the kernel then reports it in /proc/PID/cgroup.
    Path cgroup = Files.exists(Path.of("/sys/fs/cgroup/cgroup.controllers"))
        ? Path.of("/sys/fs/cgroup/system.slice/docker-" + id + ".scope")
        : Files.exists(Path.of("/sys/fs/cgroup/unified/cgroup.controllers"))
            ? Path.of("/sys/fs/cgroup/unified/docker-" + id + ".scope")
            : Path.of("/sys/fs/cgroup/pids/docker/" + id);
    try (TestNetns ns = TestNetns.create()) {
      ListenerProcess server = ns.startListener();
      Files.createDirectories(cgroup);
      try {
        Files.writeString(cgroup.resolve("cgroup.procs"), Long.toString(server.pid()));
        Listener l = only(read(ns), server.port());
        assertThat(l.processes()).singleElement().satisfies(p -> assertThat(p.containerId()).isEqualTo(id));
      } finally {
        server.stop();
        Thread.sleep(100);
        Files.deleteIfExists(cgroup);
      }
    }
  }

  @Test
  void aProcessInAnotherNamespaceIsFoundInItsNamespaceAndNotInTheAgents() throws Exception {
    try (TestNetns ns = TestNetns.create()) {
      ListenerProcess server = ns.startListener("--host", "0.0.0.0");
      Inventory all = InventoryReader.ofHost().read(InventoryReader.Scope.ALL);
      long own = NetNamespaces.inodeOf(Path.of("/proc/self/ns/net"));
      assertThat(all.namespaces()).extracting(NetNamespace::netns).contains(own, ns.inode());
      List<Listener> onPort =
          all.listeners().stream().filter(l -> l.processes().stream().anyMatch(p -> p.pid() == server.pid())).toList();
      assertThat(onPort).singleElement().satisfies(l -> {
        assertThat(l.key().netns()).isEqualTo(ns.inode()).isNotEqualTo(own);
        assertThat(l.key().address()).isEqualTo("0.0.0.0");
        assertThat(l.key().port()).isEqualTo(server.port());
      });
    }
  }

  @Test
  void aNamespaceWithNoListenerStillReportsItsLimitsAndCounters() throws Exception {
    try (TestNetns ns = TestNetns.create("net.core.somaxconn=77", "net.ipv4.tcp_syncookies=0")) {
      Inventory inventory = read(ns);
      assertThat(inventory.listeners()).isEmpty();
      NetNamespace namespace = inventory.namespace(ns.inode()).orElseThrow();
      assertThat(namespace.name()).isEqualTo(ns.name());
      assertThat(namespace.sysctls().somaxconn()).isEqualTo(77);
      assertThat(namespace.sysctls().tcpSyncookies()).isZero();
      assertThat(namespace.counters().listenDrops()).isEqualTo(ns.nstat().get("TcpExtListenDrops"));
    }
  }

  @Test
  void aNamespaceWhoseProcessExitedBeforeTheVisitIsReadThroughItsNextHandleOrSkippedInOneLine() throws Exception {
    try (TestNetns ns = TestNetns.create()) {
      ListenerProcess server = ns.startListener();
      long inode = ns.inode();
      String gone = "/proc/" + server.pid() + "/ns/net";
      server.stop();

      InventoryReader viaPin = new InventoryReader(
          () -> List.of(new NetNamespaceHandle(inode, null, List.of(gone, "/run/netns/" + ns.name()))),
          new Processes(Path.of("/proc")), RequestedBacklogs.UNKNOWN);
      Inventory read = viaPin.read(InventoryReader.Scope.ALL);
      assertThat(read.namespaces()).extracting(NetNamespace::netns).containsExactly(inode);
      assertThat(read.skipped()).isEmpty();

      InventoryReader onlyGone = new InventoryReader(
          () -> List.of(new NetNamespaceHandle(inode, null, List.of(gone)),
              new NetNamespaceHandle(NetNamespaces.inodeOf(Path.of("/proc/self/ns/net")), null, List.of("/proc/self/ns/net"))),
          new Processes(Path.of("/proc")), RequestedBacklogs.UNKNOWN);
      Inventory partial = onlyGone.read(InventoryReader.Scope.ALL);
      assertThat(partial.skipped()).singleElement().asString().contains("netns " + inode).contains("exited");
      assertThat(partial.namespaces()).hasSize(1);
    }
  }

  @Test
  void listenersThatComeAndGoWhileBeingReadNeverBreakTheInventory() throws Exception {
    try (TestNetns ns = TestNetns.create()) {
      ListenerProcess steady = ns.startListener();
      Thread churn = new Thread(() -> {
        for (int i = 0; i < 30 && !Thread.currentThread().isInterrupted(); i++) {
          try {
            ns.exec("python3", "-c", "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(8); time.sleep(0.01)");
          } catch (Exception e) {
            return;
          }
        }
      });
      churn.start();
      try {
        for (int i = 0; i < 30; i++) {
          Inventory inventory = InventoryReader.ofHost().read(InventoryReader.Scope.ALL);
          assertThat(inventory.listeners()).anySatisfy(l -> assertThat(l.key().port()).isEqualTo(steady.port()));
        }
      } finally {
        churn.interrupt();
        churn.join();
      }
    }
  }
}
