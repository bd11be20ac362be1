package dev.backlogagent.netlink;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The netlink decoding on hand-built datagrams; the kernel tests prove it against ss. */
class SockDiagParseTest {

  private static ByteBuffer socketMessage(int seq, int port, byte[] address, int queue, int backlog, int inode, Integer drops) {
    int attributes = drops == null ? 0 : 4 + 4 * 9;
    int length = 16 + 72 + attributes;
    ByteBuffer b = ByteBuffer.allocate(length).order(ByteOrder.nativeOrder());
    b.putInt(length).putShort((short) 20).putShort((short) 2).putInt(seq).putInt(0);
    b.put((byte) (address.length == 16 ? 10 : 2)).put((byte) 10).put((byte) 0).put((byte) 0);
    b.put((byte) (port >> 8)).put((byte) port).putShort((short) 0);
    b.put(address);
    b.position(16 + 4 + 4 + 16 + 16 + 4 + 8 + 4);
    b.putInt(queue).putInt(backlog).putInt(0).putInt(inode);
    if (drops != null) {
      b.putShort((short) attributes).putShort((short) 7);
      for (int i = 0; i < 8; i++) {
        b.putInt(1000 + i);
      }
      b.putInt(drops);
    }
    return b.flip();
  }

  private static ByteBuffer concat(ByteBuffer... parts) {
    int size = 0;
    for (ByteBuffer p : parts) {
      size += p.remaining();
    }
    ByteBuffer all = ByteBuffer.allocate(size).order(ByteOrder.nativeOrder());
    for (ByteBuffer p : parts) {
      all.put(p);
    }
    return all.flip();
  }

  private static ByteBuffer done(int seq) {
    ByteBuffer b = ByteBuffer.allocate(20).order(ByteOrder.nativeOrder());
    b.putInt(20).putShort((short) 3).putShort((short) 2).putInt(seq).putInt(0).putInt(0);
    return b.flip();
  }

  @Test
  void decodesPortQueueBacklogDropsAndInodeUntilDone() throws IOException {
    List<ListeningSocket> sockets = new ArrayList<>();
    boolean done = SockDiag.parseMessages(concat(
        socketMessage(7, 8080, new byte[] {127, 0, 0, 1}, 5, 4, 4242, 105),
        socketMessage(7, 443, new byte[16], 0, 4096, 4343, null),
        done(7)), 7, sockets);
    assertThat(done).isTrue();
    assertThat(sockets).containsExactly(
        new ListeningSocket(2, "127.0.0.1", 8080, 5, 4, 105, 4242),
        new ListeningSocket(10, "::", 443, 0, 4096, 0, 4343));
  }

  @Test
  void aDatagramWithoutDoneAsksForMore() throws IOException {
    List<ListeningSocket> sockets = new ArrayList<>();
    assertThat(SockDiag.parseMessages(socketMessage(1, 22, new byte[4], 0, 128, 1, 0), 1, sockets)).isFalse();
    assertThat(sockets).hasSize(1);
  }

  @Test
  void aMessageLongerThanItsDatagramIsRefused() {
    ByteBuffer b = socketMessage(1, 22, new byte[4], 0, 128, 1, 0);
    b.putInt(0, 4000);
    assertThatThrownBy(() -> SockDiag.parseMessages(b, 1, new ArrayList<>()))
        .isInstanceOf(IOException.class).hasMessageContaining("malformed");
  }

  @Test
  void anErrorAnswerBecomesAnIoExceptionWithTheErrno() {
    ByteBuffer b = ByteBuffer.allocate(20).order(ByteOrder.nativeOrder());
    b.putInt(20).putShort((short) 2).putShort((short) 0).putInt(3).putInt(0).putInt(-13).flip();
    assertThatThrownBy(() -> SockDiag.parseMessages(b, 3, new ArrayList<>()))
        .isInstanceOf(IOException.class).hasMessageContaining("errno 13");
  }
}
