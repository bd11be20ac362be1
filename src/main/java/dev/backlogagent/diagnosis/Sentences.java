package dev.backlogagent.diagnosis;

import dev.backlogagent.listener.Listener;
import dev.backlogagent.listener.Trouble;
import dev.backlogagent.procfs.ListenCounters;
import dev.backlogagent.procfs.NamespaceSysctls;
import java.time.Duration;
import java.util.List;
import java.util.Locale;

/**
 * The one vocabulary of the diagnosis, shared by `trace`, the incident spans and the daemon's summary
 * line: each kind counted in its own unit (accept-queue overflows drop SYNs and third ACKs, SYN-queue
 * overflows drop SYNs, cookies are sent, not dropped), and the same words for the same finding everywhere.
 * docs/diagnosis.md lists the sentences.
 */
public final class Sentences {
  private Sentences() {}

  /**
   * What a finding is said about.
   *
   * @param listener the listener, or null when it closed
   * @param sysctls its namespace's settings, or null when unknown
   * @param delta its namespace's counter deltas over the period, or null when unknown
   * @param peakQueue the fullest the accept queue was seen, or -1
   */
  public record Context(Listener listener, NamespaceSysctls sysctls, ListenCounters delta, long peakQueue) {}

  /** "35 SYNs and third ACKs", "1 SYN", "403 SYN cookies", "7 packets". */
  public static String count(Trouble trouble, long n) {
    if (n == 1) {
      return switch (trouble) {
        case ACCEPT_QUEUE_OVERFLOW -> "1 SYN or third ACK";
        case SYN_QUEUE_OVERFLOW, SYN_DROPPED -> "1 SYN";
        case SYNCOOKIES -> "1 SYN cookie";
        case UNEXPLAINED_DROPS -> "1 packet";
      };
    }
    return n + " " + trouble.unit();
  }

  /** A period in words: "1 s", "2.5 s", "0.4 s". */
  public static String period(Duration d) {
    double s = d.toMillis() / 1000.0;
    if (Math.abs(s - Math.rint(s)) < 0.05) {
      return String.format(Locale.ROOT, "%.0f s", Math.max(Math.rint(s), 0));
    }
    return String.format(Locale.ROOT, "%.1f s", s);
  }

  /**
   * The finding as one clause, e.g. "accept queue full 5/4 — 35 SYNs and third ACKs dropped in 1 s; the
   * application accepted nothing in that time: it is stalled; backlog 4 as requested".
   */
  public static String describe(Finding f, Context c, Duration period) {
    Listener l = c.listener();
    NamespaceSysctls s = c.sysctls();
    String in = " in " + period(period);
    return switch (f.trouble()) {
      case ACCEPT_QUEUE_OVERFLOW -> "accept queue full " + queue(c) + " — " + count(f.trouble(), f.count()) + " dropped" + in
          + "; " + pace(f, period) + "; " + backlogStory(l, s);
      case SYN_QUEUE_OVERFLOW -> "SYN queue overflow — " + count(f.trouble(), f.count()) + " dropped" + in
          + (s == null ? "" : " (tcp_syncookies=" + s.tcpSyncookies() + ", tcp_max_syn_backlog=" + s.tcpMaxSynBacklog() + ")")
          + (l == null ? "" : ", backlog " + l.backlog());
      case SYN_DROPPED -> count(f.trouble(), f.count()) + " dropped" + in + synDroppedWhy(c)
          + (f.shared() ? "; other listeners of this namespace dropped SYNs too, and which of them met a full SYN queue "
              + "(TCPReqQFullDrop) cannot be told apart" : "");
      case SYNCOOKIES -> "SYN queue full — answered with SYN cookies, " + count(f.trouble(), f.count()) + " sent" + in
          + (s == null ? "" : " (tcp_syncookies=" + s.tcpSyncookies() + ")");
      case UNEXPLAINED_DROPS -> count(f.trouble(), f.count()) + " dropped" + in + (acceptQueueFull(c)
          ? " beyond the accept queue's overflows; neither ListenOverflows nor ListenDrops counts them"
          : "; neither queue was seen full and the namespace's counters do not say why");
    };
  }

  /**
   * A finding as a headline without numbers, for the watch view's row: "accept queue overflow, the
   * application is stalled: backlog 4 as requested".
   */
  public static String headline(Finding f, Listener l, NamespaceSysctls s) {
    return switch (f.trouble()) {
      case ACCEPT_QUEUE_OVERFLOW -> "accept queue overflow" + switch (f.pace()) {
        case STALLED -> ", the application is stalled";
        case SLOW -> ", the application accepts too slowly";
        case UNKNOWN -> "";
      } + ": " + backlogStory(l, s);
      case SYN_QUEUE_OVERFLOW -> "SYN queue overflow (a SYN flood, or final ACKs lost)"
          + (s == null ? "" : "; tcp_syncookies=" + s.tcpSyncookies() + ", tcp_max_syn_backlog=" + s.tcpMaxSynBacklog());
      case SYN_DROPPED -> (s != null && s.tcpSyncookies() > 0 ? "SYNs dropped that SYN cookies could not answer"
          : "SYNs dropped with no SYN-queue overflow counted") + (f.shared() ? " (shared with other listeners)" : "");
      case SYNCOOKIES -> "SYN queue full, answered with SYN cookies" + (s == null ? "" : " (tcp_syncookies=" + s.tcpSyncookies() + ")");
      case UNEXPLAINED_DROPS -> l != null && l.queue() > l.backlog()
          ? "dropping at the door beyond the overflows the kernel counts" : "dropping at the door; no queue was seen full";
    };
  }

  /** The finding a one-line view leads with: the largest drop, else the cookies. */
  public static java.util.Optional<Finding> lead(List<Finding> findings) {
    return findings.stream().max(java.util.Comparator.comparing((Finding f) -> f.trouble().isDrop()).thenComparingLong(Finding::count));
  }

  /** Short, for the summary line: "35 SYNs and third ACKs (accept queue full, application stalled)". */
  public static String brief(Finding f) {
    String what = switch (f.trouble()) {
      case ACCEPT_QUEUE_OVERFLOW -> "accept queue full" + switch (f.pace()) {
        case STALLED -> ", application stalled";
        case SLOW -> ", application slow";
        case UNKNOWN -> "";
      };
      case SYN_QUEUE_OVERFLOW -> "SYN queue full";
      case SYN_DROPPED -> f.shared() ? "SYN drops, SYN queue share unknown" : "SYNs not answered";
      case SYNCOOKIES -> "sent, SYN queue full";
      case UNEXPLAINED_DROPS -> "kind unknown";
    };
    return count(f.trouble(), f.count()) + " (" + what + ")";
  }

  /** Findings in brief, joined: the drops first. */
  public static String brief(List<Finding> findings) {
    if (findings.isEmpty()) {
      return "kind unknown";
    }
    return String.join(", ", findings.stream().sorted((a, b) -> Boolean.compare(b.trouble().isDrop(), a.trouble().isDrop()))
        .map(Sentences::brief).toList());
  }

  /** What a namespace-level finding says, after "netns N: ". */
  public static String describe(NamespaceFinding f, List<String> listeners, NamespaceSysctls s, Duration period) {
    String in = " in " + period(period);
    String among = listeners.isEmpty() ? "" : " (" + String.join(", ", listeners) + ")";
    return switch (f.kind()) {
      case SYN_QUEUE_DROPS_UNSPLIT -> f.count() + " SYNs dropped for a full SYN queue (TCPReqQFullDrop)" + in
          + " among the listeners that dropped SYNs" + among + "; the evidence cannot split them among those listeners";
      case ACCEPT_OVERFLOWS_UNTIED -> f.count() + " SYNs and third ACKs met a full accept queue (ListenOverflows)" + in
          + "; no listener was seen full, so they are not tied to one" + among;
      case SYNCOOKIES_UNATTRIBUTED -> "a SYN queue is full — " + f.count() + " SYN cookies sent" + in
          + " (tcp_syncookies=" + (s == null ? "?" : s.tcpSyncookies()) + "); "
          + (listeners.isEmpty()
              ? "the listener is not known yet (at the tracepoint tier it shows once its half-open connections retransmit SYN-ACKs)"
              : "several listeners had SYN-side activity" + among + ", so which one sends them is not known");
    };
  }

  /** What the application did about its full accept queue. */
  static String pace(Finding f, Duration period) {
    return switch (f.pace()) {
      case STALLED -> "the application accepted no connection in " + period(period) + ": it is stalled (a bigger backlog would not help)";
      case SLOW -> "the application accepted " + f.accepts() + " in " + period(period)
          + ", fewer than arrived: it accepts too slowly for the load";
      case UNKNOWN -> f.accepts() == 0
          ? "no accept() seen in " + period(period) + " while the connections came: a burst bigger than the backlog, or a "
              + "server that stopped accepting (the next interval tells)"
          : "the application does not accept fast enough for its backlog";
    };
  }

  /** The accept queue held more than its backlog when read, or a handshake met it at the limit. */
  private static boolean acceptQueueFull(Context c) {
    Listener l = c.listener();
    return l != null && Math.max(l.queue(), c.peakQueue() + 1) > l.backlog();
  }

  private static String queue(Context c) {
    Listener l = c.listener();
    if (l == null) {
      return "(listener closed)";
    }
    return Math.max(l.queue(), c.peakQueue() + 1) + "/" + l.backlog();
  }

  /** Why SYNs were dropped with neither queue to blame, from what the namespace counted. */
  private static String synDroppedWhy(Context c) {
    ListenCounters d = c.delta();
    NamespaceSysctls s = c.sysctls();
    if (d != null && d.reqqFullCookies() > 0) {
      return " although SYN cookies are on" + (s == null ? "" : " (tcp_syncookies=" + s.tcpSyncookies() + ")")
          + ": the kernel could not answer them (TCPReqQFullDoCookies +" + d.reqqFullCookies() + ", SyncookiesSent +"
          + d.syncookiesSent() + ") — typically no route back to a spoofed source";
    }
    String settings = s == null ? "" : " (tcp_syncookies=" + s.tcpSyncookies() + ", tcp_max_syn_backlog=" + s.tcpMaxSynBacklog() + ")";
    if (s != null && s.tcpSyncookies() > 0) {
      // With cookies on, the kernel sheds no SYN below the SYN queue's limit for being unproven.
      return " with no SYN-queue overflow counted" + settings + ": typically no route back to the source (a spoofed one)";
    }
    return " with no SYN-queue overflow counted" + settings
        + ": the kernel keeps the last quarter of tcp_max_syn_backlog for peers it knows, or found no route back to the source";
  }

  /** Why the backlog is what it is: requested and clamped, requested and granted, or unknown. */
  public static String backlogStory(Listener l, NamespaceSysctls s) {
    if (l == null) {
      return "listener closed";
    }
    Long asked = l.requestedBacklog();
    if (asked != null && asked > l.backlog()) {
      return "backlog requested " + asked + ", clamped by net.core.somaxconn=" + (s == null ? "?" : s.somaxconn());
    }
    if (asked != null) {
      return "backlog " + l.backlog() + " as requested";
    }
    if (s != null && l.backlog() == s.somaxconn()) {
      return "backlog " + l.backlog() + " = net.core.somaxconn: the request was probably clamped";
    }
    return "backlog " + l.backlog() + " (request not seen)";
  }
}
