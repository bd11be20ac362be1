package dev.backlogagent.listener;

import static org.assertj.core.api.Assertions.assertThat;

import dev.backlogagent.decode.AddressFamily;
import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.decode.TraceEvent;
import dev.backlogagent.procfs.ListenCounters;
import dev.backlogagent.procfs.NamespaceSysctls;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The requested-backlog book keyed by the socket: issue 10.3 without a kernel (the kernel's is DiagnosisKernelTest). */
class RequestedBacklogBookTest {
  private static final long NETNS = 4026532177L;
  private static final NetNamespace NS = new NetNamespace(NETNS, null, new NamespaceSysctls(128, 2048, 1, 0),
      new ListenCounters(0, 0, 0, 0, 0, 0, 0));

  private static TraceEvent.ListenCall listen(int pid, String comm, long requested, long backlog) {
    return new TraceEvent.ListenCall(new ListenerKey(NETNS, AddressFamily.IPV4, "127.0.0.1", 6379), pid, comm, requested, backlog);
  }

  private static RequestedBacklogs.SocketSeen socket(long inode, long backlog, Integer... holders) {
    return new RequestedBacklogs.SocketSeen(new ListenerKey(NETNS, AddressFamily.IPV4, "127.0.0.1", 6379), inode, backlog,
        List.of(holders));
  }

  private static Inventory inventory(long... inodes) {
    List<Listener> listeners = new java.util.ArrayList<>();
    for (long inode : inodes) {
      listeners.add(new Listener(new ListenerKey(NETNS, AddressFamily.IPV4, "127.0.0.1", 6379), 0, 128, null, 0, List.of(), Set.of(), inode));
    }
    return new Inventory(List.of(NS), listeners, Instant.now(), List.of());
  }

  @Test
  void aServerThatTakesThePortOfAStoppedOneDoesNotInheritItsRequest() {
    RequestedBacklogBook book = new RequestedBacklogBook();
    // redis --tcp-backlog 511 in a namespace with somaxconn 128: granted 128, socket 100.
    book.record(listen(10, "redis-server", 511, 128));
    assertThat(book.requested(socket(100, 128, 10))).isEqualTo(511);
    // redis stops: the next inventory no longer lists socket 100, and the entry goes.
    book.prune(inventory(), InventoryReader.Scope.ALL, Instant.now());
    assertThat(book.entries()).isEmpty();
    // python listens on the same port with 128 (socket 200): its own request, not redis's.
    book.record(listen(20, "python3", 128, 128));
    assertThat(book.requested(socket(200, 128, 20))).isEqualTo(128);
    assertThat(book.requested(socket(100, 128, 20))).as("the old socket is forgotten").isNull();
  }

  @Test
  void aCallIsTiedOnlyToASocketItsProcessHoldsWithTheBacklogItGranted() {
    RequestedBacklogBook book = new RequestedBacklogBook();
    book.record(listen(10, "redis-server", 511, 128));
    assertThat(book.requested(socket(300, 128, 99))).as("another process's socket on that port").isNull();
    assertThat(book.requested(socket(300, 64, 10))).as("another backlog than the call granted").isNull();
    assertThat(book.requested(socket(100, 128, 10))).isEqualTo(511);
  }

  @Test
  void aCallWhoseSocketClosedBeforeAnyInventoryIsForgotten() throws Exception {
    RequestedBacklogBook book = new RequestedBacklogBook();
    book.record(listen(10, "redis-server", 511, 128));
    Thread.sleep(5);
    book.prune(inventory(), InventoryReader.Scope.ALL, Instant.now());
    assertThat(book.requested(socket(100, 128, 10))).isNull();
  }

  @Test
  void theStateFileKeepsSocketsAndPendingCallsAndTheOldFormatIsIgnored(@TempDir Path dir) throws Exception {
    Path file = dir.resolve("requested-backlogs.json");
    RequestedBacklogBook book = new RequestedBacklogBook();
    book.record(listen(10, "redis-server", 511, 128));
    book.requested(socket(100, 128, 10));
    book.record(listen(11, "nginx", 1024, 128)); // not yet seen by an inventory
    book.saveIfChanged(file);
    RequestedBacklogBook again = RequestedBacklogBook.load(file);
    assertThat(again.requested(socket(100, 128, 10))).isEqualTo(511);
    assertThat(again.requested(socket(101, 128, 11))).isEqualTo(1024);

    Files.writeString(file, "[{\"netns\":" + NETNS + ",\"address\":\"127.0.0.1\",\"port\":6379,\"requested\":511,\"backlog\":128}]");
    RequestedBacklogBook old = RequestedBacklogBook.load(file);
    assertThat(old.entries()).isEmpty();
    assertThat(old.requested(socket(100, 128, 10))).isNull();
  }

  @Test
  void aStateFileWrittenBeforeTheFamilyWasKeptIsReadWithTheFamilyOfItsAddresses(@TempDir Path dir) throws Exception {
    Path file = dir.resolve("requested-backlogs.json");
    Files.writeString(file, "{\"format\":2,\"sockets\":[{\"netns\":" + NETNS + ",\"socketInode\":100,\"pid\":10,"
        + "\"comm\":\"redis-server\",\"address\":\"127.0.0.1\",\"port\":6379,\"requested\":511,\"backlog\":128}],"
        + "\"pending\":[{\"netns\":" + NETNS + ",\"address\":\"::1\",\"port\":6380,\"pid\":11,\"comm\":\"nginx\","
        + "\"requested\":1024,\"backlog\":128,\"seenEpochMillis\":" + System.currentTimeMillis() + "}]}");
    RequestedBacklogBook book = RequestedBacklogBook.load(file);
    assertThat(book.entries()).singleElement().satisfies(e -> {
      assertThat(e.listener()).isEqualTo(new ListenerKey(NETNS, AddressFamily.IPV4, "127.0.0.1", 6379));
      assertThat(e.requested()).isEqualTo(511);
    });
    assertThat(book.requested(socket(100, 128, 10))).isEqualTo(511);
    ListenerKey v6 = new ListenerKey(NETNS, AddressFamily.IPV6, "::1", 6380);
    assertThat(book.requested(new RequestedBacklogs.SocketSeen(v6, 101, 128, List.of(11)))).isEqualTo(1024);
    // Written again, the entries are flat as before, with their family.
    book.record(listen(12, "redis-server", 511, 128));
    book.saveIfChanged(file);
    assertThat(Files.readString(file)).contains("{\"netns\":" + NETNS + ",\"family\":\"ipv4\",\"address\":\"127.0.0.1\","
        + "\"port\":6379,\"socketInode\":100,");
  }

  @Test
  void fieldsThatALaterAgentAddsAreIgnoredSoADowngradeKeepsTheBook(@TempDir Path dir) throws Exception {
    Path file = dir.resolve("requested-backlogs.json");
    Files.writeString(file, "{\"format\":2,\"writer\":\"later\",\"sockets\":[{\"netns\":" + NETNS
        + ",\"family\":\"ipv4\",\"address\":\"127.0.0.1\",\"port\":6379,\"socketInode\":100,\"pid\":10,"
        + "\"comm\":\"redis-server\",\"requested\":511,\"backlog\":128,\"cgroup\":\"/system.slice/redis.service\"}]}");
    assertThat(RequestedBacklogBook.load(file).requested(socket(100, 128, 10))).isEqualTo(511);
  }

  @Test
  void aNamespaceThatIsGoneTakesItsEntriesAlongWhenEveryNamespaceWasRead() {
    RequestedBacklogBook book = new RequestedBacklogBook();
    book.record(listen(10, "redis-server", 511, 128));
    book.requested(socket(100, 128, 10));
    Inventory otherNamespaceOnly = new Inventory(List.of(new NetNamespace(1L, null, null, null)), List.of(), Instant.now(), List.of());
    book.prune(otherNamespaceOnly, new InventoryReader.Scope(1L, null), Instant.now());
    assertThat(book.entries()).as("a scoped read says nothing of other namespaces").hasSize(1);
    book.prune(otherNamespaceOnly, InventoryReader.Scope.ALL, Instant.now());
    assertThat(book.entries()).isEmpty();
  }
}
