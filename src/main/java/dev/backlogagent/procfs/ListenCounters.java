package dev.backlogagent.procfs;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * The TcpExt counters of one network namespace that speak of listeners (from /proc/net/netstat).
 *
 * @param listenOverflows ListenOverflows: a SYN or third ACK met a full accept queue
 * @param listenDrops ListenDrops: every drop at a listener, overflows included
 * @param reqqFullDrops TCPReqQFullDrop: a SYN dropped because the SYN queue was full and cookies were off
 * @param reqqFullCookies TCPReqQFullDoCookies: a SYN answered with a cookie because the SYN queue was full
 * @param syncookiesSent SyncookiesSent
 * @param syncookiesRecv SyncookiesRecv: valid cookies that came back
 * @param syncookiesFailed SyncookiesFailed: cookies that came back wrong
 */
public record ListenCounters(
    long listenOverflows,
    long listenDrops,
    long reqqFullDrops,
    long reqqFullCookies,
    long syncookiesSent,
    long syncookiesRecv,
    long syncookiesFailed) {

  /** Reads the counters of the calling thread's network namespace. */
  public static ListenCounters readCurrent() throws IOException {
    return parse(Files.readString(Path.of("/proc/thread-self/net/netstat"), StandardCharsets.US_ASCII));
  }

  /** Parses netstat's header/value line pairs; a counter this kernel lacks reads as 0. */
  public static ListenCounters parse(String netstat) throws IOException {
    Map<String, Long> tcpExt = new HashMap<>();
    String[] lines = netstat.split("\n");
    for (int i = 0; i + 1 < lines.length; i++) {
      if (!lines[i].startsWith("TcpExt:") || !lines[i + 1].startsWith("TcpExt:")) {
        continue;
      }
      String[] names = lines[i].trim().split("\\s+");
      String[] values = lines[i + 1].trim().split("\\s+");
      if (names.length != values.length) {
        throw new IOException("TcpExt has " + (names.length - 1) + " names but " + (values.length - 1) + " values");
      }
      for (int k = 1; k < names.length; k++) {
        try {
          tcpExt.put(names[k], Long.parseUnsignedLong(values[k]));
        } catch (NumberFormatException e) {
          throw new IOException("TcpExt " + names[k] + " is '" + values[k] + "', not a number", e);
        }
      }
      break;
    }
    if (tcpExt.isEmpty()) {
      throw new IOException("no TcpExt lines in netstat");
    }
    return new ListenCounters(
        tcpExt.getOrDefault("ListenOverflows", 0L),
        tcpExt.getOrDefault("ListenDrops", 0L),
        tcpExt.getOrDefault("TCPReqQFullDrop", 0L),
        tcpExt.getOrDefault("TCPReqQFullDoCookies", 0L),
        tcpExt.getOrDefault("SyncookiesSent", 0L),
        tcpExt.getOrDefault("SyncookiesRecv", 0L),
        tcpExt.getOrDefault("SyncookiesFailed", 0L));
  }
}
