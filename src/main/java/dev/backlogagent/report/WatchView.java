package dev.backlogagent.report;

import dev.backlogagent.bpf.ConcernStatus;
import dev.backlogagent.listener.IntervalReport;
import dev.backlogagent.procfs.ListenCounters;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What `watch` shows, as lines of a screen of a given size: a header (tier, programs, the host's counters
 * per second), the listeners worst first in columns, and a status line (filters, keys, or the prompt).
 * It holds the view's state — filters, scroll position, a prompt being typed — and no terminal: the
 * command draws the lines it returns.
 */
public final class WatchView {
  /** Below this the columns that matter do not fit. */
  public static final int MIN_COLUMNS = 60;
  /** Header, column headings, two listeners and the status line. */
  public static final int MIN_ROWS = 8;
  private static final int HEADER_ROWS = 4;
  /** A trouble stays on its row this long after its last interval, so that a person can read it. */
  private static final Duration REMEMBER_TROUBLE = Duration.ofSeconds(10);
  private static final String[] HEADINGS =
      {"NETNS", "ADDRESS", "PROCESS", "QUEUE/BACKLOG", "REQUESTED", "DROPS/s", "SYNACK-RTX/s", "WAIT p99", "DIAGNOSIS"};
  private static final DateTimeFormatter CLOCK = DateTimeFormatter.ofPattern("HH:mm:ss", Locale.ROOT);

  /** How a line is meant to look; the command maps it to the terminal's attributes. */
  public enum Emphasis { HEADER, HEADINGS, TROUBLE, NORMAL, STATUS }

  public record Line(String text, Emphasis emphasis) {}

  /** What is being typed after p or n. */
  public enum Prompt { PORT, NAMESPACE }

  private record Remembered(String diagnosis, Instant seen) {}

  private final String tier;
  private final String programs;
  private final Duration interval;
  private final ZoneId zone;
  private List<WatchRow> rows = List.of();
  private ListenCounters perSecond;
  private int namespaces;
  private Instant at;
  private final Map<String, Remembered> troubles = new HashMap<>();
  private Integer portFilter;
  private String namespaceFilter;
  private int scroll;
  private Prompt prompt;
  private final StringBuilder typed = new StringBuilder();
  private String message;

  /**
   * @param tier the tier the pipeline runs
   * @param programs the programs that run, and those that cannot, as one line
   */
  public WatchView(String tier, String programs, Duration interval, ZoneId zone) {
    this.tier = tier;
    this.programs = programs;
    this.interval = interval;
    this.zone = zone;
  }

  /** Takes the rows and host counters of one interval. */
  public void update(IntervalReport report) {
    at = report.end();
    namespaces = report.inventory().namespaces().size();
    double seconds = Math.max(0.001, report.length().toMillis() / 1000.0);
    long[] sum = new long[7];
    for (ListenCounters d : report.counterDeltas().values()) {
      sum[0] += d.listenOverflows();
      sum[1] += d.listenDrops();
      sum[2] += d.reqqFullDrops();
      sum[3] += d.reqqFullCookies();
      sum[4] += d.syncookiesSent();
      sum[5] += d.syncookiesRecv();
      sum[6] += d.syncookiesFailed();
    }
    perSecond = new ListenCounters(Math.round(sum[0] / seconds), Math.round(sum[1] / seconds), Math.round(sum[2] / seconds),
        Math.round(sum[3] / seconds), Math.round(sum[4] / seconds), Math.round(sum[5] / seconds), Math.round(sum[6] / seconds));
    List<WatchRow> next = new ArrayList<>();
    for (WatchRow r : WatchRow.of(report)) {
      String key = r.netns() + " " + r.address() + ":" + r.port();
      if (!r.diagnosis().isEmpty()) {
        troubles.put(key, new Remembered(r.diagnosis(), at));
        next.add(r);
        continue;
      }
      Remembered last = troubles.get(key);
      if (last != null && Duration.between(last.seen(), at).compareTo(REMEMBER_TROUBLE) <= 0) {
        long ago = Duration.between(last.seen(), at).toSeconds();
        next.add(withDiagnosis(r, last.diagnosis() + " (" + ago + " s ago)"));
      } else {
        troubles.remove(key);
        next.add(r);
      }
    }
    rows = next;
  }

  private static WatchRow withDiagnosis(WatchRow r, String diagnosis) {
    return new WatchRow(r.netns(), r.namespace(), r.address(), r.port(), r.process(), r.queue(), r.backlog(),
        r.requestedBacklog(), r.dropsPerSecond(), r.synackRetransmitsPerSecond(), r.acceptWaitP99Micros(), diagnosis);
  }

  /** The rows the filters let through, worst first. */
  public List<WatchRow> visibleRows() {
    List<WatchRow> shown = new ArrayList<>();
    for (WatchRow r : rows) {
      if (portFilter != null && r.port() != portFilter) {
        continue;
      }
      if (namespaceFilter != null && !namespaceFilter.equals(r.namespace()) && !namespaceFilter.equals(Long.toString(r.netns()))) {
        continue;
      }
      shown.add(r);
    }
    return shown;
  }

  public void scrollBy(int lines) {
    scroll = Math.max(0, scroll + lines);
  }

  public void scrollToTop() {
    scroll = 0;
  }

  public boolean prompting() {
    return prompt != null;
  }

  public void startPrompt(Prompt what) {
    prompt = what;
    typed.setLength(0);
    message = null;
  }

  public void type(String text) {
    for (char c : text.toCharArray()) {
      if (c >= ' ' && c != 127 && typed.length() < 64) {
        typed.append(c);
      }
    }
  }

  public void erase() {
    if (typed.length() > 0) {
      typed.setLength(typed.length() - 1);
    }
  }

  public void cancelPrompt() {
    prompt = null;
  }

  /** Applies what was typed: a port, a namespace name or inode; nothing clears that filter. */
  public void acceptPrompt() {
    String value = typed.toString().strip();
    if (prompt == Prompt.PORT) {
      if (value.isEmpty()) {
        portFilter = null;
      } else {
        try {
          int port = Integer.parseInt(value);
          if (port < 1 || port > 65535) {
            throw new NumberFormatException();
          }
          portFilter = port;
        } catch (NumberFormatException e) {
          message = "not a port: " + value;
        }
      }
    } else if (prompt == Prompt.NAMESPACE) {
      namespaceFilter = value.isEmpty() ? null : value;
    }
    prompt = null;
    scroll = 0;
  }

  /** The screen, exactly {@code height} lines of at most {@code width} characters. */
  public List<Line> render(int width, int height) {
    List<Line> lines = new ArrayList<>();
    if (width < MIN_COLUMNS || height < MIN_ROWS) {
      lines.add(new Line(clip(tooSmall(width, height), width), Emphasis.STATUS));
      while (lines.size() < height) {
        lines.add(new Line("", Emphasis.NORMAL));
      }
      return lines;
    }
    lines.add(new Line(clip("backlog-agent watch  |  tier " + tier + "  |  every " + interval.toSeconds() + " s"
        + (at == null ? "  |  starting" : "  |  " + CLOCK.format(at.atZone(zone))), width), Emphasis.HEADER));
    lines.add(new Line(clip(programs, width), Emphasis.HEADER));
    lines.add(new Line(clip(hostLine(), width), Emphasis.HEADER));
    List<WatchRow> shown = visibleRows();
    int room = height - HEADER_ROWS - 2;
    scroll = Math.max(0, Math.min(scroll, Math.max(0, shown.size() - room)));
    List<WatchRow> page = shown.subList(Math.min(scroll, shown.size()), Math.min(shown.size(), scroll + room));
    lines.add(new Line("", Emphasis.NORMAL));
    List<String[]> cells = new ArrayList<>();
    cells.add(HEADINGS);
    for (WatchRow r : page) {
      cells.add(cells(r));
    }
    int[] widths = new int[HEADINGS.length - 1];
    for (String[] row : cells) {
      for (int i = 0; i < widths.length; i++) {
        widths[i] = Math.max(widths[i], row[i].length());
      }
    }
    for (int i = 0; i < cells.size(); i++) {
      String text = clip(align(cells.get(i), widths), width);
      Emphasis e = i == 0 ? Emphasis.HEADINGS
          : page.get(i - 1).full() || page.get(i - 1).dropsPerSecond() > 0 ? Emphasis.TROUBLE : Emphasis.NORMAL;
      lines.add(new Line(text, e));
    }
    if (page.isEmpty()) {
      lines.add(new Line(clip(at == null ? "(first interval pending)" : rows.isEmpty() ? "(no listeners)" : "(no listener matches the filter)", width), Emphasis.NORMAL));
    }
    while (lines.size() < height - 1) {
      lines.add(new Line("", Emphasis.NORMAL));
    }
    lines.add(new Line(clip(status(shown.size(), page.size()), width), Emphasis.STATUS));
    return lines;
  }

  /**
   * The concerns by what became of them, e.g. "concerns  run: listen, handshakes  |  degraded: drops  |  cannot:
   * syn_refused  |  off: states" (doctor and trace give the reasons).
   */
  public static String concernsLine(List<ConcernStatus> concerns) {
    Map<ConcernStatus.State, List<String>> byState = new java.util.EnumMap<>(ConcernStatus.State.class);
    for (ConcernStatus c : concerns) {
      byState.computeIfAbsent(c.state(), k -> new ArrayList<>()).add(c.concern().label());
    }
    if (concerns.isEmpty()) {
      return "no BPF programs: counters and inventory only";
    }
    List<String> parts = new ArrayList<>();
    for (Map.Entry<ConcernStatus.State, List<String>> e : byState.entrySet()) {
      String state = switch (e.getKey()) {
        case RUNS -> "run";
        case VARIANT -> "run as variants";
        default -> e.getKey().label();
      };
      parts.add(state + ": " + String.join(", ", e.getValue()));
    }
    return "concerns  " + String.join("  |  ", parts);
  }

  /** The one line shown, and printed on the way out, when the terminal is too small. */
  public static String tooSmall(int width, int height) {
    return "backlog-agent watch: terminal too small (" + width + "x" + height + "); it needs at least "
        + MIN_COLUMNS + "x" + MIN_ROWS;
  }

  private String hostLine() {
    if (perSecond == null) {
      return "host /s: (first interval pending)";
    }
    ListenCounters c = perSecond;
    return "host /s: ListenOverflows " + c.listenOverflows() + "  ListenDrops " + c.listenDrops()
        + "  TCPReqQFullDrop " + c.reqqFullDrops() + "  TCPReqQFullDoCookies " + c.reqqFullCookies()
        + "  SyncookiesSent " + c.syncookiesSent() + "  SyncookiesRecv " + c.syncookiesRecv()
        + "  SyncookiesFailed " + c.syncookiesFailed();
  }

  private String status(int matching, int onScreen) {
    if (prompt != null) {
      return (prompt == Prompt.PORT ? "port (empty: all): " : "namespace, name or inode (empty: all): ") + typed + "_";
    }
    StringBuilder s = new StringBuilder();
    s.append(matching == 0 ? "0" : (scroll + 1) + "-" + (scroll + onScreen)).append(" of ").append(matching)
        .append(" listeners, ").append(namespaces).append(" netns");
    if (portFilter != null) {
      s.append("  |  port ").append(portFilter);
    }
    if (namespaceFilter != null) {
      s.append("  |  netns ").append(namespaceFilter);
    }
    if (message != null) {
      s.append("  |  ").append(message);
    }
    s.append("  |  q quit  p port  n netns  Up Down PgUp PgDn scroll");
    return s.toString();
  }

  private static String[] cells(WatchRow r) {
    return new String[] {
        r.namespace(),
        r.address() + ":" + r.port(),
        r.process(),
        r.queue() + "/" + r.backlog(),
        r.requestedBacklog() == null ? "?" : Long.toString(r.requestedBacklog()),
        rate(r.dropsPerSecond()),
        rate(r.synackRetransmitsPerSecond()),
        waitText(r.acceptWaitP99Micros()),
        r.diagnosis()};
  }

  static String rate(double perSecond) {
    if (perSecond == 0) {
      return "0";
    }
    return perSecond >= 10 ? String.format(Locale.ROOT, "%.0f", perSecond) : String.format(Locale.ROOT, "%.1f", perSecond);
  }

  static String waitText(long micros) {
    if (micros < 0) {
      return "-";
    }
    if (micros < 1000) {
      return micros + "us";
    }
    if (micros < 1_000_000) {
      return String.format(Locale.ROOT, "%.1fms", micros / 1000.0);
    }
    return String.format(Locale.ROOT, "%.1fs", micros / 1_000_000.0);
  }

  /** Names and text left-aligned, numbers right-aligned, the last column as long as it is. */
  private static String align(String[] row, int[] widths) {
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < widths.length; i++) {
      boolean number = i >= 3;
      String cell = row[i];
      String pad = " ".repeat(widths[i] - cell.length());
      b.append(number ? pad + cell : cell + pad).append("  ");
    }
    return b.append(row[row.length - 1]).toString();
  }

  private static String clip(String text, int width) {
    return text.length() <= width ? text : text.substring(0, Math.max(0, width - 1)) + "~";
  }
}
