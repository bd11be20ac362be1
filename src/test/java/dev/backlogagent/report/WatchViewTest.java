package dev.backlogagent.report;

import static org.assertj.core.api.Assertions.assertThat;

import dev.backlogagent.bpf.Concern;
import dev.backlogagent.bpf.ConcernStatus;
import dev.backlogagent.decode.AddressFamily;
import dev.backlogagent.decode.BpftraceRecord;
import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.diagnosis.Finding;
import dev.backlogagent.listener.IntervalReport;
import dev.backlogagent.listener.Inventory;
import dev.backlogagent.listener.Listener;
import dev.backlogagent.listener.ListenerFlag;
import dev.backlogagent.listener.ListenerInterval;
import dev.backlogagent.listener.NetNamespace;
import dev.backlogagent.listener.Trouble;
import dev.backlogagent.procfs.ListenCounters;
import dev.backlogagent.procfs.NamespaceSysctls;
import dev.backlogagent.procfs.ProcessIdentity;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The watch screen from interval reports: order, columns, header, filters, scrolling, small terminals. */
class WatchViewTest {
  private static final long WEB = 4026532616L;
  private static final long HOST = 4026531833L;
  private static final Instant T0 = Instant.parse("2026-12-01T10:00:00Z");
  private static final NamespaceSysctls SYSCTLS = new NamespaceSysctls(64, 2048, 1, 0);

  private static Listener listener(long netns, String address, int port, long queue, long backlog, Long requested,
      String comm, int pid, ListenerFlag... flags) {
    return new Listener(new ListenerKey(netns, address.contains(":") ? AddressFamily.IPV6 : AddressFamily.IPV4, address, port), queue, backlog, requested, 0,
        List.of(new ProcessIdentity(pid, comm, comm, null)),
        flags.length == 0 ? EnumSet.noneOf(ListenerFlag.class) : EnumSet.copyOf(List.of(flags)), port * 10L + netns % 7);
  }

  private static ListenerInterval activity(Listener l, long drops, long synacks, Set<Trouble> troubles, long... waitBuckets) {
    List<BpftraceRecord.Bucket> waits = new ArrayList<>();
    for (int i = 0; i < waitBuckets.length; i += 2) {
      waits.add(new BpftraceRecord.Bucket(waitBuckets[i] / 2, waitBuckets[i], waitBuckets[i + 1]));
    }
    List<Finding> findings = troubles.stream().map(t -> Finding.of(t, t.isDrop() ? drops : 100)).toList();
    return new ListenerInterval(l, l.key(), drops, 10, l.queue(), synacks, -1,
        Map.of(), Map.of(), waits, List.of(), findings);
  }

  private static IntervalReport report(int second, List<Listener> listeners, List<ListenerInterval> active, ListenCounters webDelta) {
    Inventory inventory = new Inventory(List.of(
        new NetNamespace(WEB, "web", SYSCTLS, new ListenCounters(0, 0, 0, 0, 0, 0, 0)),
        new NetNamespace(HOST, null, new NamespaceSysctls(4096, 2048, 1, 0), new ListenCounters(0, 0, 0, 0, 0, 0, 0))),
        listeners, T0.plusSeconds(second), List.of());
    return new IntervalReport(T0.plusSeconds(second), Duration.ofSeconds(2), inventory,
        webDelta == null ? Map.of() : Map.of(WEB, webDelta), active, Map.of(), Map.of(), List.of());
  }

  private final Listener overflowing = listener(WEB, "127.0.0.1", 8080, 5, 4, 4L, "python3", 3968);
  private final Listener busy = listener(HOST, "0.0.0.0", 80, 30, 64, null, "nginx", 812, ListenerFlag.AT_SOMAXCONN);
  private final Listener flooded = listener(WEB, "::", 443, 0, 128, 128L, "envoy", 77);
  private final Listener idle = listener(HOST, "127.0.0.1", 22, 0, 128, null, "sshd", 1);
  private final Listener clamped = listener(WEB, "0.0.0.0", 9000, 0, 64, 1024L, "java", 4242, ListenerFlag.TRUNCATED);

  private WatchView viewOf(IntervalReport... reports) {
    WatchView view = new WatchView("tracepoint", "running [LISTEN, HANDSHAKES]", Duration.ofSeconds(2), ZoneOffset.UTC);
    for (IntervalReport r : reports) {
      view.update(r);
    }
    return view;
  }

  private IntervalReport trouble(int second) {
    return report(second, List.of(idle, clamped, flooded, busy, overflowing),
        List.of(activity(overflowing, 70, 0, Set.of(Trouble.ACCEPT_QUEUE_OVERFLOW), 1024, 9, 524288, 1),
            activity(flooded, 400, 12, Set.of(Trouble.SYN_QUEUE_OVERFLOW))),
        new ListenCounters(70, 470, 400, 0, 0, 0, 0));
  }

  @Test
  void theFullListenerComesFirstThenTheFullestQueueThenTheMostDropsPerSecond() {
    List<String> order = viewOf(trouble(2)).visibleRows().stream().map(r -> r.address() + ":" + r.port()).toList();
    // full 5/4; then 30/64; then the empty queues, the one dropping 200/s first, then the quiet ones by netns and port
    assertThat(order).containsExactly("127.0.0.1:8080", "0.0.0.0:80", "[::]:443", "127.0.0.1:22", "0.0.0.0:9000");
  }

  @Test
  void aRowShowsNamespaceNameAddressProcessQueueRequestedRatesWaitAndDiagnosis() {
    List<WatchView.Line> screen = viewOf(trouble(2)).render(200, 20);
    assertThat(screen).hasSize(20);
    assertThat(screen.get(0).text()).isEqualTo("backlog-agent watch  |  tier tracepoint  |  every 2 s  |  10:00:02");
    assertThat(screen.get(1).text()).isEqualTo("running [LISTEN, HANDSHAKES]");
    // the namespace's deltas over 2 s, per second
    assertThat(screen.get(2).text()).startsWith("host /s: ListenOverflows 35  ListenDrops 235  TCPReqQFullDrop 200 ");
    assertThat(screen.get(4).text()).startsWith("NETNS").contains("QUEUE/BACKLOG", "DROPS/s", "SYNACK-RTX/s", "WAIT p99", "DIAGNOSIS");
    assertThat(screen.get(4).emphasis()).isEqualTo(WatchView.Emphasis.HEADINGS);
    String first = screen.get(5).text();
    assertThat(first.split("\\s{2,}")).containsExactly("web", "127.0.0.1:8080", "python3[3968]", "5/4", "4", "35", "0",
        "524.3ms", "accept queue overflow: backlog 4 as requested");
    assertThat(screen.get(5).emphasis()).isEqualTo(WatchView.Emphasis.TROUBLE);
    assertThat(screen.get(6).text().split("\\s{2,}"))
        .containsExactly("4026531833", "0.0.0.0:80", "nginx[812]", "30/64", "?", "0", "0", "-");
    assertThat(screen.get(7).text().split("\\s{2,}")).containsExactly("web", "[::]:443", "envoy[77]", "0/128", "128", "200", "6.0", "-",
        "SYN queue overflow (a SYN flood, or final ACKs lost); tcp_syncookies=1, tcp_max_syn_backlog=2048");
    assertThat(screen.get(9).text()).endsWith("backlog requested 1024, clamped by net.core.somaxconn=64");
    assertThat(screen.get(19).text()).startsWith("1-5 of 5 listeners, 2 netns  |  q quit");
  }

  @Test
  void aTroubleStaysOnItsRowForTenSecondsAfterItsLastIntervalSayingHowLongAgo() {
    Listener drained = new Listener(new ListenerKey(WEB, AddressFamily.IPV4, "127.0.0.1", 8080), 0, 4, 4L, 0, overflowing.processes(), Set.of(),
        overflowing.socketInode());
    WatchView view = viewOf(trouble(2), report(4, List.of(drained), List.of(), null));
    assertThat(view.visibleRows().get(0).diagnosis())
        .isEqualTo("accept queue overflow: backlog 4 as requested (2 s ago)");
    view.update(report(12, List.of(drained), List.of(), null));
    assertThat(view.visibleRows().get(0).diagnosis()).endsWith("(10 s ago)");
    view.update(report(13, List.of(drained), List.of(), null));
    assertThat(view.visibleRows().get(0).diagnosis()).isEmpty();
  }

  @Test
  void aListenerStillFullAfterItsDropsSaysSoNow() {
    WatchView view = viewOf(trouble(2), report(4, List.of(overflowing), List.of(), null));
    assertThat(view.visibleRows().get(0).diagnosis())
        .isEqualTo("accept queue full now: backlog 4 as requested");
  }

  @Test
  void filtersByPortAndByNamespaceNameOrInodeAndAnEmptyAnswerClearsThem() {
    WatchView view = viewOf(trouble(2));
    view.startPrompt(WatchView.Prompt.PORT);
    view.type("443");
    assertThat(view.render(120, 12).get(11).text()).isEqualTo("port (empty: all): 443_");
    view.acceptPrompt();
    assertThat(view.visibleRows()).extracting(WatchRow::port).containsExactly(443);
    assertThat(view.render(120, 12).get(11).text()).contains("1-1 of 1 listeners", "port 443");
    view.startPrompt(WatchView.Prompt.PORT);
    view.acceptPrompt();
    view.startPrompt(WatchView.Prompt.NAMESPACE);
    view.type("web");
    view.acceptPrompt();
    assertThat(view.visibleRows()).extracting(WatchRow::port).containsExactly(8080, 443, 9000);
    view.startPrompt(WatchView.Prompt.NAMESPACE);
    view.type(Long.toString(HOST));
    view.acceptPrompt();
    assertThat(view.visibleRows()).extracting(WatchRow::port).containsExactly(80, 22);
    view.startPrompt(WatchView.Prompt.PORT);
    view.type("99999");
    view.acceptPrompt();
    assertThat(view.render(120, 12).get(11).text()).contains("not a port: 99999");
    view.startPrompt(WatchView.Prompt.NAMESPACE);
    view.type("nowhere");
    view.acceptPrompt();
    assertThat(view.render(120, 12)).extracting(WatchView.Line::text).contains("(no listener matches the filter)");
  }

  @Test
  void scrollingMovesThePageAndStopsAtTheEnds() {
    WatchView view = viewOf(trouble(2));
    // 9 rows: header 3, blank, headings, 3 listeners, status
    assertThat(view.render(120, 9).get(5).text()).contains("127.0.0.1:8080");
    view.scrollBy(1);
    assertThat(view.render(120, 9).get(5).text()).contains("0.0.0.0:80");
    view.scrollBy(100);
    List<WatchView.Line> bottom = view.render(120, 9);
    assertThat(bottom.get(5).text()).contains(":443");
    assertThat(bottom.get(7).text()).contains(":9000");
    assertThat(bottom.get(8).text()).startsWith("3-5 of 5 listeners");
    view.scrollBy(-100);
    assertThat(view.render(120, 9).get(5).text()).contains("127.0.0.1:8080");
  }

  @Test
  void theConcernsLineGroupsTheConcernsByWhatBecameOfThem() {
    List<ConcernStatus> concerns = List.of(
        new ConcernStatus(Concern.LISTEN, ConcernStatus.State.RUNS, "listen.bt", null),
        new ConcernStatus(Concern.DROPS, ConcernStatus.State.DEGRADED, "drops-no-rx-sk.bt", "no rx_sk"),
        new ConcernStatus(Concern.HANDSHAKES, ConcernStatus.State.RUNS, "handshakes.bt", null),
        new ConcernStatus(Concern.SYN_REFUSED, ConcernStatus.State.CANNOT, null, "needs the kprobe tier"),
        new ConcernStatus(Concern.STATES, ConcernStatus.State.OFF, null, "not asked for"));
    assertThat(WatchView.concernsLine(concerns))
        .isEqualTo("concerns  run: listen, handshakes  |  degraded: drops  |  cannot: syn_refused  |  off: states");
    assertThat(WatchView.concernsLine(List.of())).isEqualTo("no BPF programs: counters and inventory only");
  }

  @Test
  void aTerminalTooSmallGetsOneLineSayingSo() {
    List<WatchView.Line> screen = viewOf(trouble(2)).render(70, 7);
    assertThat(screen).hasSize(7);
    assertThat(screen.get(0).text()).isEqualTo("backlog-agent watch: terminal too small (70x7); it needs at least 60x8");
    assertThat(screen.subList(1, 7)).allSatisfy(l -> assertThat(l.text()).isEmpty());
  }

  @Test
  void linesNeverExceedTheWidth() {
    List<WatchView.Line> screen = viewOf(trouble(2)).render(60, 10);
    assertThat(screen).allSatisfy(l -> assertThat(l.text().length()).isLessThanOrEqualTo(60));
    assertThat(screen.get(5).text()).endsWith("~");
  }
}
