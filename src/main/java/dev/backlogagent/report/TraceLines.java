package dev.backlogagent.report;

import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.decode.StateTransition;
import dev.backlogagent.decode.TcpState;
import dev.backlogagent.decode.TraceEvent;
import dev.backlogagent.diagnosis.Finding;
import dev.backlogagent.diagnosis.NamespaceFinding;
import dev.backlogagent.diagnosis.Sentences;
import dev.backlogagent.kernel.TracepointSymbols;
import dev.backlogagent.listener.Inventory;
import dev.backlogagent.listener.IntervalReport;
import dev.backlogagent.listener.Listener;
import dev.backlogagent.listener.ListenerCorrelator;
import dev.backlogagent.listener.ListenerInterval;
import dev.backlogagent.listener.NetNamespace;
import dev.backlogagent.listener.ResetCount;
import dev.backlogagent.procfs.ListenCounters;
import dev.backlogagent.procfs.NamespaceSysctls;
import dev.backlogagent.procfs.ProcessIdentity;
import java.time.Duration;
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
  private final TracepointSymbols resetReasons;

  public TraceLines(TracepointSymbols resetReasons) {
    this.resetReasons = resetReasons;
  }

  public static String stateName(int state) {
    return TcpState.name(state);
  }

  /** Who and where: "nginx[812] 0.0.0.0:80 netns 4026531833". */
  private static String where(ListenerKey key, Integer pid, String comm) {
    String endpoint = key.endpoint();
    String who = comm == null ? "" : comm + (pid == null ? "" : "[" + pid + "]") + " ";
    return who + endpoint + " netns " + key.netns();
  }

  private static TraceLine.Where at(ListenerKey key, Integer pid, String comm) {
    return new TraceLine.Where(key.netns(), key.family(), key.address(), key.port(), pid, comm);
  }

  private static ProcessIdentity owner(Listener l) {
    return l == null || l.processes().isEmpty() ? null : l.processes().get(0);
  }

  /** A line for an event printed as it happened (listen, slow accept, overflow start); resets are summed per interval. */
  public TraceLine event(TraceEvent event, Inventory inventory) {
    String now = Instant.now().toString();
    if (event instanceof TraceEvent.ListenCall c) {
      NamespaceSysctls s = inventory == null ? null : inventory.namespace(c.key().netns()).map(NetNamespace::sysctls).orElse(null);
      Integer somaxconn = s == null ? null : s.somaxconn();
      boolean truncated = c.requestedBacklog() > c.backlog();
      String text = where(c.key(), c.pid(), c.comm()) + ": listen(" + c.requestedBacklog() + ") → backlog " + c.backlog()
          + (truncated ? " — truncated by net.core.somaxconn" + (somaxconn == null ? "" : "=" + somaxconn) : "");
      return new TraceLine.Listen(now, at(c.key(), c.pid(), c.comm()), c.requestedBacklog(), c.backlog(), somaxconn, truncated, text);
    }
    if (event instanceof TraceEvent.SlowAccept a) {
      ProcessIdentity p = owner(inventory == null ? null : ListenerCorrelator.join(inventory, a.key()));
      // Integer.valueOf: with a bare int here the conditional would unbox a null pid and throw.
      Integer pid = a.pid() > 0 ? Integer.valueOf(a.pid()) : p == null ? null : p.pid();
      String comm = a.comm() != null ? a.comm() : p == null ? null : p.comm();
      double ms = a.waitMicros() / 1000.0;
      String text = where(a.key(), pid, comm) + String.format(Locale.ROOT, ": a connection waited %.1f ms in the accept queue (queue %d/%d)", ms, a.queue(), a.backlog());
      return new TraceLine.SlowAccept(now, at(a.key(), pid, comm), ms, a.queue(), a.backlog(), text);
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
      return new TraceLine.OverflowStart(now, at(o.key(), p == null ? null : p.pid(), p == null ? null : p.comm()), o.kind(),
          o.queue(), o.backlog(), o.syncookies() >= 0 ? o.syncookies() : null, text);
    }
    return null;
  }

  /**
   * The lines that sum up one interval: one per finding of each listener (in the words of {@link Sentences}),
   * SYN-ACK retransmits, the namespace findings, resets, and states.
   */
  public List<TraceLine> interval(IntervalReport report, boolean withStates) {
    List<TraceLine> lines = new ArrayList<>();
    String now = report.end().toString();
    Duration period = report.length();
    String seconds = Sentences.period(period);
    for (ListenerInterval li : report.listeners()) {
      Listener l = li.listener();
      ListenerKey key = li.key();
      ProcessIdentity p = owner(l);
      Integer pid = p == null ? null : p.pid();
      String comm = p == null ? null : p.comm();
      NamespaceSysctls s = report.inventory().namespace(key.netns()).map(NetNamespace::sysctls).orElse(null);
      ListenCounters delta = report.counterDeltas().get(key.netns());
      String where = where(key, pid, comm);
      TraceLine.Where at = at(key, pid, comm);
      Sentences.Context context = new Sentences.Context(l, s, delta, li.peakQueue());
      Long backlog = l == null ? null : l.backlog();
      Integer syncookies = s == null ? null : s.tcpSyncookies();
      for (Finding f : li.findings()) {
        String text = where + ": " + Sentences.describe(f, context, period);
        switch (f.trouble()) {
          case ACCEPT_QUEUE_OVERFLOW -> lines.add(new TraceLine.AcceptQueueOverflow(now, at, f.count(),
              l == null ? null : Math.max(l.queue(), li.peakQueue() + 1), li.peakQueue() < 0 ? null : li.peakQueue(), backlog, l == null ? null : l.requestedBacklog(),
              s == null ? null : s.somaxconn(), f.pace().name().toLowerCase(Locale.ROOT), f.accepts() < 0 ? null : f.accepts(), text));
          case SYN_QUEUE_OVERFLOW -> lines.add(new TraceLine.SynDrops(now, "syn_queue_overflow", at, f.count(), backlog, syncookies, null, text));
          case SYN_DROPPED -> lines.add(new TraceLine.SynDrops(now, "syn_dropped", at, f.count(), backlog, syncookies,
              f.shared() ? Boolean.TRUE : null, text));
          case UNEXPLAINED_DROPS -> lines.add(new TraceLine.SynDrops(now, "unexplained_drops", at, f.count(), backlog, syncookies, null, text));
          case SYNCOOKIES -> lines.add(new TraceLine.Syncookies(now, at, f.count(), syncookies, text));
        }
      }
      if (li.synackRetransmits() > 0) {
        String text = where + ": " + li.synackRetransmits() + " SYN-ACKs retransmitted in " + seconds
            + " (half-open connections waiting for a final ACK)";
        lines.add(new TraceLine.SynackRetransmit(now, at, li.synackRetransmits(), text));
      }
    }
    for (Map.Entry<Long, List<NamespaceFinding>> e : report.namespaceFindings().entrySet()) {
      long netns = e.getKey();
      NamespaceSysctls s = report.inventory().namespace(netns).map(NetNamespace::sysctls).orElse(null);
      for (NamespaceFinding f : e.getValue()) {
        List<Listener> among = report.inventory().listeners().stream()
            .filter(l -> l.key().netns() == netns && f.sockets().contains(l.socketInode())).toList();
        List<String> names = among.stream().map(l -> endpoint(l)).toList();
        String text = "netns " + netns + ": " + Sentences.describe(f, names, s, period);
        if (f.kind() == NamespaceFinding.Kind.SYNCOOKIES_UNATTRIBUTED) {
          lines.add(new TraceLine.Syncookies(now, new TraceLine.Where(netns, null, null, null, null, null), f.count(),
              s == null ? null : s.tcpSyncookies(), text));
        } else {
          lines.add(new TraceLine.NamespaceFinding(now, netns, f.kind().name().toLowerCase(Locale.ROOT), f.count(),
              among.stream().map(l -> l.key().port()).toList(), text));
        }
      }
    }
    for (ResetCount r : report.resets()) {
      ProcessIdentity p = owner(r.listener());
      Integer pid = p == null ? null : p.pid();
      String comm = p == null ? null : p.comm();
      String reason = resetReasons.name(r.reason());
      String text = where(r.key(), pid, comm) + ": " + r.count() + (r.count() == 1 ? " reset" : " resets") + " sent in " + seconds
          + ", reason " + reason + ", " + (r.state() == TcpState.NO_SOCKET ? "no socket: nobody listens on this port"
              : "state " + r.state());
      lines.add(new TraceLine.Reset(now, at(r.key(), pid, comm), reason,
          r.state() == null ? null : r.state().name(), r.count(), text));
    }
    if (withStates) {
      for (Map.Entry<StateTransition, Long> e : report.stateTransitions().entrySet()) {
        String from = e.getKey().fromName();
        String to = e.getKey().toName();
        lines.add(new TraceLine.State(now, from, to, e.getValue(), "state " + from + " -> " + to + ": " + e.getValue() + " in " + seconds));
      }
    }
    return lines;
  }

  private static String endpoint(Listener l) {
    String where = l.key().endpoint();
    ProcessIdentity p = owner(l);
    return p == null ? where : p.comm() + "[" + p.pid() + "] " + where;
  }

  /** Why the backlog is what it is (the shared vocabulary's words). */
  public static String backlogStory(Listener l, NamespaceSysctls s) {
    return Sentences.backlogStory(l, s);
  }
}
