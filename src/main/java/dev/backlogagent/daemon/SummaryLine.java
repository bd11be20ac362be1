package dev.backlogagent.daemon;

import dev.backlogagent.export.AgentStatus;
import dev.backlogagent.export.ExportHealth;
import dev.backlogagent.export.ListenerBook;
import dev.backlogagent.export.ListenerFilter;
import dev.backlogagent.export.ListenerIdentity;
import dev.backlogagent.diagnosis.Sentences;
import dev.backlogagent.listener.IntervalReport;
import dev.backlogagent.listener.ListenerInterval;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * The daemon's one line per interval on stdout, for journald: how many listeners, which ones dropped and
 * why, and whether the agent itself is healthy. Example:
 * {@code 42 listeners in 3 netns (42 exported); dropping: python3[812] 0.0.0.0:8080 37 SYNs and third ACKs (accept queue full,
 * application stalled);
 * 1 incident open; events +3120, lost 0; OTLP ok}
 */
final class SummaryLine {
  private static final int SHOWN = 3;
  private long decodedBefore;

  String line(IntervalReport report, ListenerBook book, ListenerFilter filter, int openIncidents, AgentStatus status,
      ExportHealth health, boolean otlp) {
    long listeners = report.inventory().listeners().stream().filter(l -> filter.admits(l, report.inventory())).count();
    StringBuilder b = new StringBuilder();
    b.append(listeners).append(listeners == 1 ? " listener" : " listeners")
        .append(" in ").append(report.inventory().namespaces().size()).append(" netns (")
        .append(book.lastRows().size()).append(" exported");
    if (book.leftOut() > 0) {
      b.append(", ").append(book.leftOut()).append(" over the cap");
    }
    b.append(")");
    List<ListenerInterval> dropping = new ArrayList<>();
    for (ListenerInterval li : report.listeners()) {
      if (li.listener() != null && li.drops() > 0 && filter.admits(li.listener(), report.inventory())) {
        dropping.add(li);
      }
    }
    dropping.sort(Comparator.comparingLong(ListenerInterval::drops).reversed());
    if (dropping.isEmpty()) {
      b.append("; no drops");
    } else {
      b.append("; dropping: ");
      for (int i = 0; i < Math.min(SHOWN, dropping.size()); i++) {
        ListenerInterval li = dropping.get(i);
        b.append(i == 0 ? "" : ", ").append(ListenerIdentity.of(li.listener()).label()).append(' ').append(Sentences.brief(li.findings()));
      }
      if (dropping.size() > SHOWN) {
        b.append(" and ").append(dropping.size() - SHOWN).append(" more");
      }
    }
    if (openIncidents > 0) {
      b.append("; ").append(openIncidents).append(openIncidents == 1 ? " incident open" : " incidents open");
    }
    b.append("; events +").append(status.decodedEvents() - decodedBefore).append(", lost ").append(status.lostEvents());
    decodedBefore = status.decodedEvents();
    if (status.malformedLines() > 0) {
      b.append(", malformed ").append(status.malformedLines());
    }
    if (otlp) {
      b.append(health.failing() ? "; OTLP failing" : status.lastExport().isEmpty() ? "; OTLP not yet sent" : "; OTLP ok");
    }
    return b.toString();
  }

}
