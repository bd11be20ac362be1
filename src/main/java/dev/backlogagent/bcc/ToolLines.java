package dev.backlogagent.bcc;

import java.util.Arrays;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The lines bcc's libbpf-tools print, as Debian 12 (0.26) and Debian 13 (0.31) ship them — the same
 * printf formats in both (libbpf-tools/tcpstates.c, solisten.c). Fields are split on blanks from both ends,
 * so a command name holding a blank still parses. A header is recognised and skipped; anything else that
 * does not parse is malformed, for the caller to count. {@code tcpsynbl} prints histograms over several lines
 * (libbpf-tools/tcpsynbl.c and trace_helpers.c's print_log2_hist, unchanged from 0.26 to 0.31): its lines are
 * decoded one at a time, the caller keeping which {@code backlog_max} the buckets that follow belong to.
 */
public final class ToolLines {
  private ToolLines() {}

  /** A line that is neither a header nor a well-formed record. */
  public static final class MalformedLine extends Exception {
    public MalformedLine(String tool, String line) {
      super(tool + ": " + (line.length() > 120 ? line.substring(0, 120) + "…" : line));
    }
  }

  /**
   * {@code tcpstates -w}: {@code "%-16llx %-7d %-16s %-2d %-26s %-5d %-26s %-5d %-11s -> %-11s %.3f"} (0.26;
   * 0.31 widens the addresses to 39): skaddr, pid, comm, IP version, local address and port, remote address and
   * port, old and new state, milliseconds in the old state. {@code pid} is the task the change ran in.
   */
  public record StateChange(long skaddr, int pid, String comm, int family, String localAddress, int localPort,
      String remoteAddress, int remotePort, String oldState, String newState) {}

  /** {@code solisten}: {@code "%-7d %-16s %-3d %-7d %-5s %-5d %-32s"}: pid, comm, ret, backlog (after the somaxconn clamp), proto, port, address. */
  public record ListenCall(int pid, String comm, int ret, long backlog, String proto, int port, String address) {
    public int family() {
      return proto.endsWith("v6") ? 10 : 2;
    }
  }

  /** One line of {@code tcpsynbl INTERVAL}: a histogram's limit or one of its buckets. */
  public sealed interface SynBacklogLine {}

  /** {@code "backlog_max = %lld"}: the buckets that follow count listeners with this effective backlog. */
  public record BacklogLimit(long backlogMax) implements SynBacklogLine {}

  /**
   * {@code "%*lld -> %-*lld : %-8d |stars|"}: {@code count} calls of tcp_v4/v6_syn_recv_sock (a third ACK, or a
   * SYN cookie's ACK, about to create the child) found the accept queue between {@code low} and {@code high}
   * long (power-of-two slots; the first, {@code 0 -> 1}, holds 0 and 1).
   */
  public record BacklogBucket(long low, long high, long count) implements SynBacklogLine {}

  private static final Pattern SYNBL_LIMIT = Pattern.compile("backlog_max = (\\d+)");
  private static final Pattern SYNBL_BUCKET = Pattern.compile("(\\d+) -> (\\d+)\\s*: (-?\\d+)\\s*\\|[* ]*\\+?\\|");
  private static final Pattern SYNBL_TIME = Pattern.compile("\\d\\d:\\d\\d:\\d\\d");

  /**
   * Empty for the lines that carry no number: the banner ({@code Tracing SYN backlog size...}), the blank line
   * that opens each interval, a histogram's column header ({@code backlog : count distribution}) and a {@code -T}
   * time of day.
   */
  public static Optional<SynBacklogLine> tcpsynbl(String line) throws MalformedLine {
    String t = line.strip();
    if (t.isEmpty() || t.startsWith("Tracing SYN backlog") || (t.startsWith("backlog") && t.contains(": count"))
        || SYNBL_TIME.matcher(t).matches()) {
      return Optional.empty();
    }
    try {
      Matcher m = SYNBL_LIMIT.matcher(t);
      if (m.matches()) {
        return Optional.of(new BacklogLimit(Long.parseLong(m.group(1))));
      }
      m = SYNBL_BUCKET.matcher(t);
      if (m.matches()) {
        long low = Long.parseLong(m.group(1));
        long high = Long.parseLong(m.group(2));
        // The slot is an unsigned int printed with %d: past 2^31 it reads negative.
        long count = Long.parseLong(m.group(3));
        if (count < 0) {
          count += 1L << 32;
        }
        if (low > high || count < 0 || count >= 1L << 32) {
          throw new MalformedLine("tcpsynbl", line);
        }
        return Optional.of(new BacklogBucket(low, high, count));
      }
    } catch (NumberFormatException e) {
      // a number too long for a long: not what tcpsynbl prints
    }
    throw new MalformedLine("tcpsynbl", line);
  }

  /** Empty for the header line. */
  public static Optional<StateChange> tcpstates(String line) throws MalformedLine {
    String[] t = line.strip().split("\\s+");
    if (t.length > 0 && t[0].equals("SKADDR")) {
      return Optional.empty();
    }
    if (t.length < 12 || !t[t.length - 3].equals("->")) {
      throw new MalformedLine("tcpstates", line);
    }
    int n = t.length;
    try {
      int ipVersion = Integer.parseInt(t[n - 9]);
      if (ipVersion != 4 && ipVersion != 6) {
        throw new MalformedLine("tcpstates", line);
      }
      Double.parseDouble(t[n - 1]);
      return Optional.of(new StateChange(Long.parseUnsignedLong(t[0], 16), Integer.parseInt(t[1]),
          String.join(" ", Arrays.copyOfRange(t, 2, n - 9)), ipVersion == 6 ? 10 : 2, t[n - 8],
          Integer.parseInt(t[n - 7]), t[n - 6], Integer.parseInt(t[n - 5]), t[n - 4], t[n - 2]));
    } catch (NumberFormatException e) {
      throw new MalformedLine("tcpstates", line);
    }
  }

  /** Empty for the header line. */
  public static Optional<ListenCall> solisten(String line) throws MalformedLine {
    String[] t = line.strip().split("\\s+");
    if (t.length > 0 && t[0].equals("PID")) {
      return Optional.empty();
    }
    if (t.length < 7) {
      throw new MalformedLine("solisten", line);
    }
    int n = t.length;
    try {
      return Optional.of(new ListenCall(Integer.parseInt(t[0]), String.join(" ", Arrays.copyOfRange(t, 1, n - 5)),
          Integer.parseInt(t[n - 5]), Long.parseLong(t[n - 4]), t[n - 3], Integer.parseInt(t[n - 2]), t[n - 1]));
    } catch (NumberFormatException e) {
      throw new MalformedLine("solisten", line);
    }
  }
}
