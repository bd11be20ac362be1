package dev.backlogagent.bcc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * libbpf-tools' lines as they print them: tcpstates -w recorded on this VM (0.26), solisten from its printf format
 * and in the Debian 12 guest, tcpsynbl in the Debian 12 guest (0.26, 6.1) and the Debian 13 guest (0.31, 6.12).
 */
class ToolLinesTest {

  private static List<String> lines(String resource) throws IOException {
    try (InputStream in = ToolLinesTest.class.getResourceAsStream("/libbpf-tools/" + resource)) {
      return new String(in.readAllBytes(), StandardCharsets.UTF_8).lines().toList();
    }
  }

  @Test
  void tcpstatesWideLinesGiveTheListenersBirthItsHandshakesAndItsCloseInBothFamilies() throws Exception {
    List<ToolLines.StateChange> changes = new ArrayList<>();
    for (String line : lines("tcpstates-0.26-wide.txt")) {
      ToolLines.tcpstates(line).ifPresent(changes::add);
    }
    assertThat(changes).hasSize(12);
    assertThat(changes.get(0)).isEqualTo(new ToolLines.StateChange(0xffff888231201280L, 7066, "python3", 2,
        "127.0.0.1", 8096, "0.0.0.0", 0, "CLOSE", "LISTEN"));
    assertThat(changes).filteredOn(c -> c.oldState().equals("LISTEN") && c.newState().equals("SYN_RECV"))
        .extracting(ToolLines.StateChange::family, ToolLines.StateChange::localAddress, ToolLines.StateChange::remotePort)
        .containsExactly(org.assertj.core.groups.Tuple.tuple(2, "127.0.0.1", 49300),
            org.assertj.core.groups.Tuple.tuple(10, "::1", 58860));
  }

  @Test
  void solistenLinesKeepACommandNameWithABlank() throws Exception {
    List<ToolLines.ListenCall> calls = new ArrayList<>();
    for (String line : lines("solisten-format.txt")) {
      ToolLines.solisten(line).ifPresent(calls::add);
    }
    assertThat(calls).containsExactly(
        new ToolLines.ListenCall(3301, "python3", 0, 1024, "TCPv4", 8080, "127.0.0.1"),
        new ToolLines.ListenCall(3302, "Web Content", 0, 64, "TCPv6", 8443, "::"),
        new ToolLines.ListenCall(3303, "nc", -98, 5, "TCPv4", 22, "0.0.0.0"));
    assertThat(calls.get(1).family()).isEqualTo(10);
  }

  /** Recorded in the Debian 12 guest (6.1, kprobes): listen(7), listen(1024) on [::], listen(-1). */
  @Test
  void solistenAsRecordedOnDebian12ShowsTheClampedBacklogAndZeroForMinusOne() throws Exception {
    List<ToolLines.ListenCall> calls = new ArrayList<>();
    for (String line : lines("solisten-0.26-debian12-6.1.txt")) {
      ToolLines.solisten(line).ifPresent(calls::add);
    }
    assertThat(calls).extracting(ToolLines.ListenCall::backlog, ToolLines.ListenCall::port, ToolLines.ListenCall::address,
        ToolLines.ListenCall::family).containsExactly(
            org.assertj.core.groups.Tuple.tuple(7L, 47101, "127.0.0.1", 2),
            org.assertj.core.groups.Tuple.tuple(1024L, 47102, "::", 10),
            // listen(-1): the kernel grants somaxconn (4096); solisten prints 0, which is why its number is
            // trusted only where sock_diag's effective backlog agrees.
            org.assertj.core.groups.Tuple.tuple(0L, 47103, "0.0.0.0", 2));
  }

  /**
   * Recorded with {@code tcpsynbl 1} in a guest: in one namespace, a listener with backlog 4 taking 40 connects
   * (ss then: Recv-Q 5, d105 on 6.1 and d175 on 6.12, all refused SYNs, which tcpsynbl does not see) and one with
   * backlog 128 taking 100 (Recv-Q 100), neither accepting.
   */
  static List<ToolLines.SynBacklogLine> synblLines(String resource) throws Exception {
    List<ToolLines.SynBacklogLine> out = new ArrayList<>();
    for (String line : lines(resource)) {
      ToolLines.tcpsynbl(line).ifPresent(out::add);
    }
    return out;
  }

  @Test
  void tcpsynblAsRecordedOnDebian12GivesOneHistogramPerBacklogLimit() throws Exception {
    assertThat(synblLines("tcpsynbl-0.26-debian12-6.1.txt")).containsExactly(
        new ToolLines.BacklogLimit(128),
        new ToolLines.BacklogBucket(0, 1, 2), new ToolLines.BacklogBucket(2, 3, 2), new ToolLines.BacklogBucket(4, 7, 4),
        new ToolLines.BacklogBucket(8, 15, 8), new ToolLines.BacklogBucket(16, 31, 16),
        new ToolLines.BacklogBucket(32, 63, 32), new ToolLines.BacklogBucket(64, 127, 36),
        // The five handshakes that fit (queue 0..4); the 35 refused connections never reached a third ACK.
        new ToolLines.BacklogLimit(4),
        new ToolLines.BacklogBucket(0, 1, 2), new ToolLines.BacklogBucket(2, 3, 2), new ToolLines.BacklogBucket(4, 7, 1));
  }

  @Test
  void tcpsynblAsRecordedOnDebian13PrintsTheSame() throws Exception {
    // The binary of Debian 13's libbpf-tools (tcpsynbl-libbpf, 0.31) run in the 6.12 guest over the Debian 13 root.
    assertThat(synblLines("tcpsynbl-0.31-debian13-6.12.txt")).isEqualTo(synblLines("tcpsynbl-0.26-debian12-6.1.txt"));
  }

  @Test
  void tcpsynblCountsPastTwoToThe31ReadAsUnsignedAndAPlusAfterTheStarsIsAllowed() throws Exception {
    // print_log2_hist prints an unsigned slot with %d, and a '+' after the stars when a value passes the scale.
    assertThat(ToolLines.tcpsynbl("      4096 -> 8191       : -294967296 |****************************************|"))
        .contains(new ToolLines.BacklogBucket(4096, 8191, 4_000_000_000L));
    assertThat(ToolLines.tcpsynbl("         0 -> 1          : 7        |****************************************+|"))
        .contains(new ToolLines.BacklogBucket(0, 1, 7));
  }

  @Test
  void aTruncatedOrForeignTcpsynblLineIsMalformed() {
    for (String bad : List.of("backlog_max = ", "         0 -> 1          : 3        |****", "         8 -> 1          : 3        ||",
        "backlog_max = 99999999999999999999", "failed to lookup hist: -2")) {
      assertThatThrownBy(() -> ToolLines.tcpsynbl(bad)).as(bad).isInstanceOf(ToolLines.MalformedLine.class)
          .hasMessageStartingWith("tcpsynbl: ");
    }
  }

  @Test
  void aTruncatedOrForeignLineIsMalformed() {
    assertThatThrownBy(() -> ToolLines.tcpstates("ffff888105278000 7066    python3          4  127.0.0.1   8096"))
        .isInstanceOf(ToolLines.MalformedLine.class).hasMessageContaining("tcpstates: ffff888105278000");
    assertThatThrownBy(() -> ToolLines.tcpstates("lost 12 events on CPU #1 and more words here -> x y"))
        .isInstanceOf(ToolLines.MalformedLine.class);
    assertThatThrownBy(() -> ToolLines.solisten("3301 python3 zero 1024 TCPv4 8080 127.0.0.1"))
        .isInstanceOf(ToolLines.MalformedLine.class);
  }
}
