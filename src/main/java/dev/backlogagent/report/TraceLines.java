package dev.backlogagent.report;

import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.decode.TraceEvent;
import dev.backlogagent.kernel.TracepointSymbols;
import dev.backlogagent.listener.Inventory;
import dev.backlogagent.listener.IntervalReport;
import dev.backlogagent.listener.Listener;
import dev.backlogagent.listener.ListenerCorrelator;
import dev.backlogagent.listener.ListenerInterval;
import dev.backlogagent.listener.NetNamespace;
import dev.backlogagent.listener.Trouble;
import dev.backlogagent.procfs.ListenCounters;
import dev.backlogagent.procfs.NamespaceSysctls;
import dev.backlogagent.procfs.ProcessIdentity;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Turns events and interval reports into trace lines that explain themselves: the listener, its process,
 * the numbers, and the settings behind them.
 */
public final class TraceLines {
  private static final String[] STATE_NAMES = {"0", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1",
      "FIN_WAIT2", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV"};

  private final TracepointSymbols resetReasons;

  public TraceLines(TracepointSymbols resetReasons) {
    this.resetReasons = resetReasons;
  }

  public static String stateName(int state) {
    return state >= 0 && state < STATE_NAMES.length ? STATE_NAMES[state] : Integer.toString(state);
  }

  /** Who and where: "nginx[812] 0.0.0.0:80 netns 4026531833". */
  private static String where(ListenerKey key, Integer pid, String comm) {
    String endpoint = key.family() == 10 ? "[" + key.address() + "]:" + key.port() : key.address() + ":" + key.port();
    String who = comm == null ? "" : comm + (pid == null ? "" : "[" + pid + "]") + " ";
    return who + endpoint + " netns " + key.netns();
  }

  private static ProcessIdentity owner(Listener l) {
    return l == null || l.processes().isEmpty() ? null : l.processes().get(0);
  }

  /** A line for an event printed as it happened (listen, reset, slow accept, overflow start). */
  public TraceLine event(TraceEvent event, Inventory inventory) {
    String now = Instant.now().toString();
    if (event instanceof TraceEvent.ListenCall c) {
      NamespaceSysctls s = inventory == null ? null : inventory.namespace(c.key().netns()).map(NetNamespace::sysctls).orElse(null);
      Integer somaxconn = s == null ? null : s.somaxconn();
      boolean truncated = c.requestedBacklog() > c.backlog();
      String text = where(c.key(), c.pid(), c.comm()) + ": listen(" + c.requestedBacklog() + ") → backlog " + c.backlog()
          + (truncated ? " — truncated by net.core.somaxconn" + (somaxconn == null ? "" : "=" + somaxconn) : "");
      return new TraceLine(now, "listen", c.key().netns(), c.key().familyName(), c.key().address(), c.key().port(),
          c.pid(), c.comm(), c.requestedBacklog(), c.backlog(), somaxconn, truncated,
          null, null, null, null, null, null, null, null, null, null, text);
    }
    if (event instanceof TraceEvent.ResetSent r) {
      ProcessIdentity p = owner(inventory == null ? null : ListenerCorrelator.join(inventory, r.key()));
      String reason = resetReasons.name(r.reason());
      String state = stateName(r.state());
      String text = where(r.key(), p == null ? null : p.pid(), p == null ? null : p.comm()) + ": reset sent, reason " + reason + ", state " + state;
      return new TraceLine(now, "reset", r.key().netns(), r.key().familyName(), r.key().address(), r.key().port(),
          p == null ? null : p.pid(), p == null ? null : p.comm(), null, null, null, null, null, null, null, null, null,
          reason, state, null, null, null, text);
    }
    if (event instanceof TraceEvent.SlowAccept a) {
      ProcessIdentity p = owner(inventory == null ? null : ListenerCorrelator.join(inventory, a.key()));
      // Integer.valueOf: with a bare int here the conditional would unbox a null pid and throw.
      Integer pid = a.pid() > 0 ? Integer.valueOf(a.pid()) : p == null ? null : p.pid();
      String comm = a.comm() != null ? a.comm() : p == null ? null : p.comm();
      double ms = a.waitMicros() / 1000.0;
      String text = where(a.key(), pid, comm) + String.format(Locale.ROOT, ": a connection waited %.1f ms in the accept queue (queue %d/%d)", ms, a.queue(), a.backlog());
      return new TraceLine(now, "slow_accept", a.key().netns(), a.key().familyName(), a.key().address(), a.key().port(),
          pid, comm, null, a.backlog(), null, null, null, a.queue(), null, null, null, null, null, null, null, ms, text);
    }
    if (event instanceof TraceEvent.OverflowStart o) {
      ProcessIdentity p = owner(inventory == null ? null : ListenerCorrelator.join(inventory, o.key()));
      String what = switch (o.kind()) {
        case "accept" -> "accept queue full";
        case "syn" -> "SYN queue full, SYNs dropped";
        case "cookie" -> "SYN queue full, answering with SYN cookies";
        default -> o.kind();
      };
      String text = where(o.key(), p == null ? null : p.pid(), p == null ? null : p.comm()) + ": overflow begins — " + what + " " + o.queue() + "/" + o.backlog();
      return new TraceLine(now, "overflow_start", o.key().netns(), o.key().familyName(), o.key().address(), o.key().port(),
          p == null ? null : p.pid(), p == null ? null : p.comm(), null, o.backlog(), null, null, null, o.queue(),
          o.syncookies() >= 0 ? o.syncookies() : null, null, null, o.kind(), null, null, null, null, text);
    }
    return null;
  }

  /** The lines that sum up one interval: one per trouble of each listener, SYN-ACK retransmits, states. */
  public List<TraceLine> interval(IntervalReport report, boolean withStates) {
    List<TraceLine> lines = new ArrayList<>();
    String now = report.end().toString();
    String seconds = String.format(Locale.ROOT, "%.0f s", Math.max(1, report.length().toMillis() / 1000.0));
    for (ListenerInterval li : report.listeners()) {
      Listener l = li.listener();
      ListenerKey key = li.key();
      ProcessIdentity p = owner(l);
      Integer pid = p == null ? null : p.pid();
      String comm = p == null ? null : p.comm();
      NetNamespace ns = report.inventory().namespace(key.netns()).orElse(null);
      NamespaceSysctls s = ns == null ? null : ns.sysctls();
      ListenCounters delta = report.counterDeltas().get(key.netns());
      String where = where(key, pid, comm);
      for (Trouble trouble : li.troubles()) {
        switch (trouble) {
          case ACCEPT_QUEUE_OVERFLOW -> {
            // Counted from the listener's own sk_drops on every tier: the kprobe tier's refusal counts are
            // flushed on bpftrace's clock, not ours, and mixing the two would count a burst twice.
            long drops = li.drops();
            if (drops == 0) {
              continue;
            }
            long queue = l == null ? -1 : Math.max(l.queue(), li.peakQueue() + 1);
            long backlog = l == null ? -1 : l.backlog();
            String text = where + ": accept queue full " + queue + "/" + backlog + " — " + drops + " SYNs dropped in " + seconds
                + "; " + backlogStory(l, s);
            lines.add(new TraceLine(now, "accept_queue_overflow", key.netns(), key.familyName(), key.address(), key.port(), pid, comm,
                l == null ? null : l.requestedBacklog(), backlog, s == null ? null : s.somaxconn(), null, drops, queue,
                null, null, null, null, null, null, null, null, text));
          }
          case SYN_QUEUE_OVERFLOW -> {
            long drops = li.drops();
            if (drops == 0) {
              continue;
            }
            String text = where + ": SYN queue overflow — " + drops + " SYNs dropped in " + seconds
                + (s == null ? "" : " (tcp_syncookies=" + s.tcpSyncookies() + ", tcp_max_syn_backlog=" + s.tcpMaxSynBacklog() + ")")
                + (l == null ? "" : ", backlog " + l.backlog());
            lines.add(new TraceLine(now, "syn_queue_overflow", key.netns(), key.familyName(), key.address(), key.port(), pid, comm,
                null, l == null ? null : l.backlog(), null, null, drops, null, s == null ? null : s.tcpSyncookies(),
                null, null, null, null, null, null, null, text));
          }
          case SYNCOOKIES -> {
            // What the namespace really sent: a cookie whose SYN-ACK has no route is counted by
            // TCPReqQFullDoCookies but never sent.
            long sent = delta == null ? li.refusedByKind().getOrDefault("cookie", 0L) : delta.syncookiesSent();
            String text = where + ": SYN queue full — answered with SYN cookies, " + sent + " sent in " + seconds
                + (s == null ? "" : " (tcp_syncookies=" + s.tcpSyncookies() + ")");
            lines.add(new TraceLine(now, "syncookies", key.netns(), key.familyName(), key.address(), key.port(), pid, comm,
                null, null, null, null, null, null, s == null ? null : s.tcpSyncookies(), sent, null, null, null, null, null, null, text));
          }
          default -> { }
        }
      }
      if (li.synackRetransmits() > 0) {
        String text = where + ": " + li.synackRetransmits() + " SYN-ACKs retransmitted in " + seconds
            + " (half-open connections waiting for a final ACK)";
        lines.add(new TraceLine(now, "synack_retransmit", key.netns(), key.familyName(), key.address(), key.port(), pid, comm,
            null, null, null, null, null, null, null, null, li.synackRetransmits(), null, null, null, null, null, text));
      }
    }
    for (Map.Entry<Long, Long> e : report.unattributedCookies().entrySet()) {
      NamespaceSysctls s = report.inventory().namespace(e.getKey()).map(NetNamespace::sysctls).orElse(null);
      String text = "netns " + e.getKey() + ": a SYN queue is full — " + e.getValue() + " SYN cookies sent in " + seconds
          + " (tcp_syncookies=" + (s == null ? "?" : s.tcpSyncookies()) + "); the listener is not known yet "
          + "(at the tracepoint tier it shows once its half-open connections retransmit SYN-ACKs)";
      lines.add(new TraceLine(now, "syncookies", e.getKey(), null, null, null, null, null, null, null, null, null, null, null,
          s == null ? null : s.tcpSyncookies(), e.getValue(), null, null, null, null, null, null, text));
    }
    if (withStates) {
      for (Map.Entry<String, Long> e : report.stateTransitions().entrySet()) {
        String[] fromTo = e.getKey().split(">");
        String from = stateName(Integer.parseInt(fromTo[0]));
        String to = stateName(Integer.parseInt(fromTo[1]));
        lines.add(new TraceLine(now, "state", null, null, null, null, null, null, null, null, null, null, null, null, null,
            null, e.getValue(), null, null, from, to, null, "state " + from + " -> " + to + ": " + e.getValue() + " in " + seconds));
      }
    }
    return lines;
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
      return "backlog " + l.backlog() + " as requested: the application accepts too slowly for it";
    }
    if (s != null && l.backlog() == s.somaxconn()) {
      return "backlog " + l.backlog() + " = net.core.somaxconn: the request was probably clamped";
    }
    return "backlog " + l.backlog() + " (request not seen)";
  }
}
