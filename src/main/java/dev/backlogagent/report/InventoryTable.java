package dev.backlogagent.report;

import dev.backlogagent.listener.Inventory;
import dev.backlogagent.listener.Listener;
import dev.backlogagent.listener.ListenerFlag;
import dev.backlogagent.listener.NetNamespace;
import dev.backlogagent.procfs.ListenCounters;
import dev.backlogagent.procfs.NamespaceSysctls;
import dev.backlogagent.procfs.ProcessIdentity;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * Writes an inventory for a person: one block per namespace, the namespace whose worst listener is worst
 * first, with its limits and counters in a header line and its listeners worst first in aligned columns.
 */
public final class InventoryTable {
  private static final String[] HEADINGS = {"LISTEN", "QUEUE", "BACKLOG", "REQUESTED", "DROPS", "FLAGS", "PROCESS"};

  private final boolean showEmptyNamespaces;

  /** @param showEmptyNamespaces whether a namespace without (matching) listeners still gets its header */
  public InventoryTable(boolean showEmptyNamespaces) {
    this.showEmptyNamespaces = showEmptyNamespaces;
  }

  public void write(Inventory inventory, PrintWriter out) {
    Map<Long, List<Listener>> byNamespace = new LinkedHashMap<>();
    for (Listener l : inventory.listeners()) { // already worst first
      byNamespace.computeIfAbsent(l.key().netns(), k -> new ArrayList<>()).add(l);
    }
    for (NetNamespace ns : inventory.namespaces()) {
      if (showEmptyNamespaces) {
        byNamespace.putIfAbsent(ns.netns(), List.of());
      }
    }
    boolean first = true;
    for (Map.Entry<Long, List<Listener>> block : byNamespace.entrySet()) {
      if (!first) {
        out.println();
      }
      first = false;
      out.println(header(block.getKey(), inventory));
      if (block.getValue().isEmpty()) {
        out.println("  (no listeners)");
        continue;
      }
      List<String[]> rows = new ArrayList<>();
      rows.add(HEADINGS);
      for (Listener l : block.getValue()) {
        rows.add(row(l));
      }
      writeAligned(rows, out);
    }
    for (String skip : inventory.skipped()) {
      out.println("skipped: " + skip);
    }
    out.flush();
  }

  static String header(long netns, Inventory inventory) {
    NetNamespace ns = inventory.namespace(netns).orElse(null);
    StringBuilder line = new StringBuilder("netns ").append(netns);
    if (ns == null) {
      return line.toString();
    }
    if (ns.name() != null) {
      line.append(" (").append(ns.name()).append(')');
    }
    NamespaceSysctls s = ns.sysctls();
    line.append(": somaxconn ").append(s.somaxconn())
        .append(", tcp_max_syn_backlog ").append(s.tcpMaxSynBacklog())
        .append(", tcp_syncookies ").append(s.tcpSyncookies())
        .append(", tcp_abort_on_overflow ").append(s.tcpAbortOnOverflow());
    ListenCounters c = ns.counters();
    line.append(" | ListenOverflows ").append(c.listenOverflows())
        .append(" ListenDrops ").append(c.listenDrops())
        .append(" TCPReqQFullDrop ").append(c.reqqFullDrops())
        .append(" TCPReqQFullDoCookies ").append(c.reqqFullCookies())
        .append(" SyncookiesSent ").append(c.syncookiesSent())
        .append(" SyncookiesRecv ").append(c.syncookiesRecv())
        .append(" SyncookiesFailed ").append(c.syncookiesFailed());
    return line.toString();
  }

  private static String[] row(Listener l) {
    String endpoint = l.key().endpoint();
    String flags = l.flags().isEmpty() ? "-" : l.flags().stream().map(ListenerFlag::label).collect(Collectors.joining(","));
    return new String[] {
      endpoint,
      Long.toString(l.queue()),
      Long.toString(l.backlog()),
      l.requestedBacklog() == null ? "?" : l.requestedBacklog().toString(),
      Long.toString(l.drops()),
      flags,
      l.processes().isEmpty() ? "-" : l.processes().stream().map(InventoryTable::owner).collect(Collectors.joining(","))
    };
  }

  private static String owner(ProcessIdentity p) {
    String who = p.comm() + "[" + p.pid() + "]";
    if (p.containerId() != null) {
      String id = p.containerId();
      who += "{" + (id.length() > 12 && id.matches("[0-9a-f]+") ? id.substring(0, 12) : id) + "}";
    }
    return who;
  }

  private static void writeAligned(List<String[]> rows, PrintWriter out) {
    int columns = rows.get(0).length;
    int[] widths = new int[columns];
    for (String[] row : rows) {
      for (int i = 0; i < columns; i++) {
        widths[i] = Math.max(widths[i], row[i].length());
      }
    }
    for (String[] row : rows) {
      StringBuilder line = new StringBuilder("  ");
      for (int i = 0; i < columns; i++) {
        boolean numeric = i >= 1 && i <= 4;
        String cell = row[i];
        if (i == columns - 1) {
          line.append(cell);
        } else if (numeric) {
          line.append(" ".repeat(widths[i] - cell.length())).append(cell).append("  ");
        } else {
          line.append(cell).append(" ".repeat(widths[i] - cell.length())).append("  ");
        }
      }
      out.println(line.toString().stripTrailing());
    }
  }
}
