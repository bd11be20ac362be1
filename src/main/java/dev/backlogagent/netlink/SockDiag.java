package dev.backlogagent.netlink;

import com.sun.jna.LastErrorException;
import com.sun.jna.Memory;
import com.sun.jna.NativeLong;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * Dumps the listening TCP sockets of the calling thread's network namespace through NETLINK_SOCK_DIAG,
 * the same interface {@code ss -ltnm} uses, so that numbers match ss's to the socket.
 *
 * <p>A netlink socket belongs to the namespace it was created in: to read another namespace, the caller
 * enters it first (see {@link NetNamespaceEntry}), then calls {@link #listeners()}.
 */
public final class SockDiag {
  private static final int NETLINK_SOCK_DIAG = 4;
  private static final int SOCK_DIAG_BY_FAMILY = 20;
  private static final short NLM_F_REQUEST = 0x1;
  private static final short NLM_F_DUMP = 0x300;
  private static final int NLMSG_ERROR = 2;
  private static final int NLMSG_DONE = 3;
  private static final int IPPROTO_TCP = 6;
  private static final int TCP_LISTEN = 10;
  private static final int INET_DIAG_SKMEMINFO = 7;
  private static final int SK_MEMINFO_DROPS = 8;
  private static final int NLMSG_HEADER = 16;
  private static final int INET_DIAG_MSG = 72;
  private static final int RECEIVE_BUFFER = 1 << 16;

  private final LibC libc = LibC.INSTANCE;

  /** All LISTEN sockets, IPv4 then IPv6, of the calling thread's network namespace. */
  public List<ListeningSocket> listeners() throws IOException {
    List<ListeningSocket> sockets = new ArrayList<>();
    int fd;
    try {
      fd = libc.socket(LibC.AF_NETLINK, LibC.SOCK_RAW | LibC.SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    } catch (LastErrorException e) {
      throw new IOException("cannot open a NETLINK_SOCK_DIAG socket: errno " + e.getErrorCode(), e);
    }
    try (Memory buffer = new Memory(RECEIVE_BUFFER)) {
      int sequence = 1;
      for (int family : new int[] {ListeningSocket.AF_INET, ListeningSocket.AF_INET6}) {
        byte[] request = dumpRequest(family, sequence);
        libc.send(fd, request, new NativeLong(request.length), 0);
        readDump(fd, buffer, sequence, sockets);
        sequence++;
      }
    } catch (LastErrorException e) {
      throw new IOException("NETLINK_SOCK_DIAG dump failed: errno " + e.getErrorCode(), e);
    } finally {
      libc.close(fd);
    }
    return sockets;
  }

  static byte[] dumpRequest(int family, int sequence) {
    ByteBuffer b = ByteBuffer.allocate(NLMSG_HEADER + 56).order(ByteOrder.nativeOrder());
    b.putInt(NLMSG_HEADER + 56);
    b.putShort((short) SOCK_DIAG_BY_FAMILY);
    b.putShort((short) (NLM_F_REQUEST | NLM_F_DUMP));
    b.putInt(sequence);
    b.putInt(0);
    // struct inet_diag_req_v2: only LISTEN sockets, and ask for sk_meminfo because it carries sk_drops.
    b.put((byte) family);
    b.put((byte) IPPROTO_TCP);
    b.put((byte) (1 << (INET_DIAG_SKMEMINFO - 1)));
    b.put((byte) 0);
    b.putInt(1 << TCP_LISTEN);
    // inet_diag_sockid left zero: a dump ignores it.
    return b.array();
  }

  private void readDump(int fd, Memory buffer, int sequence, List<ListeningSocket> into)
      throws IOException {
    while (true) {
      int n = libc.recv(fd, buffer, new NativeLong(buffer.size()), 0).intValue();
      if (n <= 0) {
        throw new IOException("NETLINK_SOCK_DIAG dump ended without NLMSG_DONE");
      }
      ByteBuffer b = buffer.getByteBuffer(0, n).order(ByteOrder.nativeOrder());
      if (parseMessages(b, sequence, into)) {
        return;
      }
    }
  }

  /** Parses one datagram of netlink messages; returns true when it held the end of the dump. */
  static boolean parseMessages(ByteBuffer b, int sequence, List<ListeningSocket> into)
      throws IOException {
    while (b.remaining() >= NLMSG_HEADER) {
      int start = b.position();
      int length = b.getInt(start);
      int type = Short.toUnsignedInt(b.getShort(start + 4));
      int seq = b.getInt(start + 8);
      if (length < NLMSG_HEADER || start + length > b.limit()) {
        throw new IOException("malformed netlink message of length " + length);
      }
      if (seq == sequence) {
        if (type == NLMSG_DONE) {
          return true;
        }
        if (type == NLMSG_ERROR) {
          int errno = -b.getInt(start + NLMSG_HEADER);
          throw new IOException("NETLINK_SOCK_DIAG answered errno " + errno);
        }
        if (type == SOCK_DIAG_BY_FAMILY && length >= NLMSG_HEADER + INET_DIAG_MSG) {
          into.add(parseSocket(b, start + NLMSG_HEADER, start + length));
        }
      }
      b.position(Math.min(b.limit(), start + align(length)));
    }
    return false;
  }

  private static ListeningSocket parseSocket(ByteBuffer b, int at, int end) {
    int family = Byte.toUnsignedInt(b.get(at));
    // inet_diag_sockid: ports and addresses are in network byte order.
    int port = (Byte.toUnsignedInt(b.get(at + 4)) << 8) | Byte.toUnsignedInt(b.get(at + 5));
    byte[] raw = new byte[family == ListeningSocket.AF_INET6 ? 16 : 4];
    b.get(at + 8, raw);
    long queue = Integer.toUnsignedLong(b.getInt(at + 56));
    long backlog = Integer.toUnsignedLong(b.getInt(at + 60));
    long inode = Integer.toUnsignedLong(b.getInt(at + 68));
    long drops = 0;
    int attr = at + INET_DIAG_MSG;
    while (attr + 4 <= end) {
      int attrLength = Short.toUnsignedInt(b.getShort(attr));
      int attrType = Short.toUnsignedInt(b.getShort(attr + 2));
      if (attrLength < 4) {
        break;
      }
      if (attrType == INET_DIAG_SKMEMINFO && attrLength >= 4 + 4 * (SK_MEMINFO_DROPS + 1)) {
        drops = Integer.toUnsignedLong(b.getInt(attr + 4 + 4 * SK_MEMINFO_DROPS));
      }
      attr += align(attrLength);
    }
    return new ListeningSocket(family, AddressText.of(raw), port, queue, backlog, drops, inode);
  }

  private static int align(int length) {
    return (length + 3) & ~3;
  }
}
