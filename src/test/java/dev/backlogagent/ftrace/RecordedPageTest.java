package dev.backlogagent.ftrace;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * A page read from a real trace_pipe_raw on 6.18 (listen(7) on 127.0.0.1:47001, listen(9) on [::1]:47002,
 * one connection to each, both closed), decoded through that kernel's format files.
 */
class RecordedPageTest {

  static Map<String, String> formats(String kernel) throws IOException {
    Map<String, String> formats = new LinkedHashMap<>();
    for (String e : List.of("syscalls/sys_enter_listen", "syscalls/sys_exit_listen", "sock/inet_sock_set_state",
        "tcp/tcp_retransmit_synack", "skb/kfree_skb", "tcp/tcp_send_reset")) {
      String text = text("/ftrace/" + kernel + "/" + e.substring(e.indexOf('/') + 1) + ".format");
      if (text != null) {
        formats.put(e, text);
      }
    }
    return formats;
  }

  static String text(String resource) throws IOException {
    try (InputStream in = RecordedPageTest.class.getResourceAsStream(resource)) {
      return in == null ? null : new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
  }

  /** Every call the decoder makes, as text. */
  static final class Calls implements ListenerEvents.Output {
    final List<String> seen = new ArrayList<>();

    public void listenRequested(int tid, int fd, long backlog) {
      seen.add("listen fd=" + fd + " backlog=" + backlog);
    }

    public void listenReturned(int tid, long ret) {
      seen.add("listen returned " + ret);
    }

    public void listenerBorn(int tid, long socket, int family, String address, int port) {
      seen.add("born " + family + " " + address + " " + port + (socket != 0 ? " at socket" : ""));
    }

    public void listenerClosed(long socket) {
      seen.add("closed");
    }

    public void handshake(int tid, int family, String address, int port) {
      seen.add("handshake " + family + " " + address + " " + port);
    }

    public void synackRetransmit(long listener, int family, String address, int port) {
      seen.add("synack " + family + " " + address + " " + port);
    }

    public void drop(long socket, long reason) {
      seen.add("drop " + reason);
    }

    public void reset(int tid, long socket, int family, String address, int port, int state, long reason) {
      seen.add("reset " + address + " " + port + " state " + state + " reason " + reason);
    }
  }

  @Test
  void listenCallsHandshakesAndClosesOfBothFamiliesAreReadByTheFormatsOffsets() throws IOException {
    ListenerEvents events = new ListenerEvents(formats("6.18"));
    byte[] page;
    try (InputStream in = getClass().getResourceAsStream("/ftrace/6.18/cpu1-listen-handshake.page")) {
      page = in.readAllBytes();
    }
    Calls calls = new Calls();
    RingBufferPage.Summary summary = RingBufferPage.decode(page, page.length, 16, (b, offset, length, time) -> {
      if (events.kind(b, offset) != ListenerEvents.Kind.OTHER) {
        assertThat(events.decode(b, offset, length, calls)).isTrue();
      }
    });
    assertThat(summary.missed()).isZero();
    assertThat(summary.records()).isGreaterThanOrEqualTo(9);
    List<String> mine = calls.seen.subList(0, 9);
    assertThat(mine).containsExactly(
        "listen fd=3 backlog=7",
        "born 2 127.0.0.1 47001 at socket",
        "listen returned 0",
        "handshake 2 127.0.0.1 47001",
        "listen fd=6 backlog=9",
        "born 10 ::1 47002 at socket",
        "listen returned 0",
        "handshake 10 ::1 47002",
        "closed");
  }

  @Test
  void theFiltersAreBuiltFromTheFormatsStateAndReasonNames() throws IOException {
    ListenerEvents events = new ListenerEvents(formats("6.18"));
    Map<String, String> filters = new LinkedHashMap<>();
    events.subscriptions(8080).forEach(s -> filters.put(s.event(), s.filter()));
    assertThat(filters.get("inet_sock_set_state"))
        .isEqualTo("protocol == 6 && (newstate == 10 || oldstate == 10 || oldstate == 12) && sport == 8080");
    // 6.18 numbers: TCP_LISTEN_OVERFLOW 40, NO_SOCKET 3, TCP_INVALID_SYN 46, SOCKET_BACKLOG 29 (see the format).
    assertThat(filters.get("kfree_skb")).startsWith("rx_sk != 0 && (reason == 40 || reason == 3 || reason == 46 || reason == 29");
    assertThat(filters.get("sys_exit_listen")).isEqualTo("ret == 0");
    assertThat(filters.get("tcp_retransmit_synack")).isEqualTo("sport == 8080");
    assertThat(events.unavailable()).isEmpty();
  }

  @Test
  void aResetsSourceIsReadFromTheSockaddrThatSixTwelveStores() {
    byte[] v4 = new byte[28];
    v4[0] = 2; // AF_INET, host order
    v4[2] = 0x1f; v4[3] = (byte) 0x90; // port 8080, network order
    v4[4] = 127; v4[7] = 1;
    assertThat(ListenerEvents.sockaddr(v4)).isEqualTo(new ListenerEvents.Endpoint(2, "127.0.0.1", 8080));
    byte[] v6 = new byte[28];
    v6[0] = 10;
    v6[3] = 9;
    v6[23] = 1;
    assertThat(ListenerEvents.sockaddr(v6)).isEqualTo(new ListenerEvents.Endpoint(10, "::1", 9));
  }

  @Test
  void aPageFlaggedWithMissedEventsReportsTheStoredCount() {
    byte[] page = new byte[64];
    java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(page).order(java.nio.ByteOrder.LITTLE_ENDIAN);
    b.putLong(8, (1L << 31) | (1L << 30) | 12); // 12 bytes of data, events missed, count stored after the data
    b.putInt(16, 2); // type_len 2: a header and an 8-byte record
    b.putInt(20, 0xdead);
    b.putLong(28, 123);
    List<Integer> lengths = new ArrayList<>();
    RingBufferPage.Summary s = RingBufferPage.decode(page, page.length, 16, (buf, off, len, time) -> lengths.add(len));
    assertThat(lengths).containsExactly(8);
    assertThat(s.missed()).isEqualTo(123);
  }
}
