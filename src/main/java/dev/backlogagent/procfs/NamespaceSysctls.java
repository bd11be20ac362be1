package dev.backlogagent.procfs;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The per-namespace sysctls that decide how a listener's queues behave.
 *
 * @param somaxconn the ceiling on every listen() backlog in the namespace
 * @param tcpMaxSynBacklog bounds the SYN queue (half-open requests) together with the backlog
 * @param tcpSyncookies 0 never, 1 when the SYN queue overflows, 2 always
 * @param tcpAbortOnOverflow 1 makes an accept-queue overflow answer with RST instead of a silent drop
 */
public record NamespaceSysctls(int somaxconn, int tcpMaxSynBacklog, int tcpSyncookies, int tcpAbortOnOverflow) {

  /** Reads the sysctls of the calling thread's network namespace from /proc/sys. */
  public static NamespaceSysctls readCurrent() throws IOException {
    return read(Path.of("/proc/sys"));
  }

  static NamespaceSysctls read(Path sys) throws IOException {
    return new NamespaceSysctls(
        (int) value(sys.resolve("net/core/somaxconn")),
        (int) value(sys.resolve("net/ipv4/tcp_max_syn_backlog")),
        (int) value(sys.resolve("net/ipv4/tcp_syncookies")),
        (int) value(sys.resolve("net/ipv4/tcp_abort_on_overflow")));
  }

  /** Reads one numeric sysctl file, such as /proc/sys/net/core/somaxconn, of the calling thread's namespace. */
  public static long value(Path file) throws IOException {
    // A sysctl answers only the first read(2): asked again at an offset it reports end of file, so a
    // reader that starts with a tiny buffer (as Files.readString does for a zero-size file) gets "4"
    // out of "4096". One read into a buffer larger than any value avoids that.
    byte[] buffer = new byte[64];
    int n;
    try (InputStream in = Files.newInputStream(file)) {
      n = in.read(buffer);
    }
    String text = n <= 0 ? "" : new String(buffer, 0, n, StandardCharsets.US_ASCII).strip();
    try {
      return Long.parseLong(text);
    } catch (NumberFormatException e) {
      throw new IOException(file + " holds '" + text + "', not a number", e);
    }
  }
}
