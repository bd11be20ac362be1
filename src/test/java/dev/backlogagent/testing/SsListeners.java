package dev.backlogagent.testing;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** What {@code ss -ltnmH} says of each listener: the reference the agent's numbers are checked against. */
public record SsListeners(List<Row> rows) {
  /** Recv-Q, Send-Q and the skmem d counter of one listener. */
  public record Row(String address, int port, long recvQ, long sendQ, long drops) {}

  private static final Pattern LINE =
      Pattern.compile("LISTEN\\s+(\\d+)\\s+(\\d+)\\s+(\\S+):(\\d+)\\s+\\S+.*?skmem:\\([^)]*\\bd(\\d+)\\)", Pattern.DOTALL);

  static SsListeners parse(String output) {
    // With -m, ss puts skmem on a continuation line that starts with a tab.
    String joined = output.replace("\n\t", " ");
    List<Row> rows = new ArrayList<>();
    for (String line : joined.split("\n")) {
      Matcher m = LINE.matcher(line);
      if (m.find()) {
        String address = m.group(3);
        if (address.startsWith("[") && address.endsWith("]")) {
          address = address.substring(1, address.length() - 1);
        }
        rows.add(new Row(address, Integer.parseInt(m.group(4)), Long.parseLong(m.group(1)),
            Long.parseLong(m.group(2)), Long.parseLong(m.group(5))));
      }
    }
    return new SsListeners(rows);
  }

  public Row port(int port) {
    return rows.stream()
        .filter(r -> r.port() == port)
        .findFirst()
        .orElseThrow(() -> new AssertionError("ss shows no listener on port " + port + ": " + rows));
  }
}
