package dev.backlogagent.bpf;

import java.io.IOException;
import java.io.InputStream;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;

/**
 * TCP connections on this host's loopback that go through the state machine's common paths, one at a time:
 * closed by the client first, by the server first, reset by the client (SO_LINGER 0), and refused by a port
 * nobody listens on. Bounded: {@code each} of every kind, 2 s timeouts.
 */
final class LoopbackLifecycles {
  private LoopbackLifecycles() {}

  static void run(int each) throws IOException {
    InetAddress lo = InetAddress.getLoopbackAddress();
    int closedPort;
    try (ServerSocket probe = new ServerSocket(0, 1, lo)) {
      closedPort = probe.getLocalPort();
    }
    try (ServerSocket server = new ServerSocket(0, 128, lo)) {
      server.setSoTimeout(2000);
      InetSocketAddress at = new InetSocketAddress(lo, server.getLocalPort());
      for (int i = 0; i < each; i++) {
        // The client closes first: client FIN_WAIT1 -> FIN_WAIT2 -> ..., server CLOSE_WAIT -> LAST_ACK -> CLOSE.
        try (Socket client = connect(at); Socket child = server.accept()) {
          client.close();
          drain(child);
        }
        // The server closes first.
        try (Socket client = connect(at); Socket child = server.accept()) {
          child.close();
          drain(client);
        }
        // The client aborts: ESTABLISHED -> CLOSE on both ends.
        try (Socket client = connect(at); Socket child = server.accept()) {
          client.setSoLinger(true, 0);
          client.close();
          drain(child);
        }
        // Refused: SYN_SENT -> CLOSE.
        try (Socket refused = new Socket()) {
          refused.connect(new InetSocketAddress(lo, closedPort), 2000);
          throw new IllegalStateException("port " + closedPort + " was expected closed");
        } catch (ConnectException expected) {
          // the reset from the closed port
        }
      }
    }
  }

  private static Socket connect(InetSocketAddress at) throws IOException {
    Socket s = new Socket();
    s.connect(at, 2000);
    return s;
  }

  /** Reads until the peer's FIN (or reset), so that the close order is the one intended. */
  private static void drain(Socket s) throws IOException {
    s.setSoTimeout(2000);
    InputStream in = s.getInputStream();
    try {
      while (in.read() >= 0) {
        // nothing is sent
      }
    } catch (java.net.SocketException reset) {
      // the aborting client's reset
    }
  }
}
