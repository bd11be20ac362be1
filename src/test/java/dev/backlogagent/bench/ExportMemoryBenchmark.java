package dev.backlogagent.bench;

import dev.backlogagent.config.AgentConfig;
import dev.backlogagent.decode.AddressFamily;
import dev.backlogagent.decode.BpftraceRecord;
import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.export.AgentStatus;
import dev.backlogagent.export.BacklogMetrics;
import dev.backlogagent.export.ExportHealth;
import dev.backlogagent.export.ListenerBook;
import dev.backlogagent.export.ListenerFilter;
import dev.backlogagent.export.ListenerHistograms;
import dev.backlogagent.export.Telemetry;
import dev.backlogagent.diagnosis.Finding;
import dev.backlogagent.listener.IntervalReport;
import dev.backlogagent.listener.Inventory;
import dev.backlogagent.listener.Listener;
import dev.backlogagent.listener.ListenerInterval;
import dev.backlogagent.listener.NetNamespace;
import dev.backlogagent.listener.Trouble;
import dev.backlogagent.procfs.ListenCounters;
import dev.backlogagent.procfs.NamespaceSysctls;
import dev.backlogagent.procfs.ProcessIdentity;
import dev.backlogagent.testing.DaemonProcess;
import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * What each exported listener costs the heap: what the metrics keep per listener (book rows, the SDK's
 * series), and what one Prometheus scrape allocates per listener (the SDK's snapshot, the exposition text
 * and its buffers), for quiet listeners and for busy ones (every histogram bucket in use). The highest
 * {@code listeners.max} accepted ({@link AgentConfig.Listeners#MAX_EXPORTED}) comes from the busy figure:
 * see docs/hardening.md.
 *
 * <p>{@code mvn -B verify -Pbench -Dtest=ExportMemoryBenchmark -Dsurefire.failIfNoSpecifiedTests=false}
 */
@Tag("bench")
class ExportMemoryBenchmark {
  private static final long NETNS = 4026531840L;

  @Test
  void heapPerExportedListenerKeptAndPerScrape() throws Exception {
    System.out.printf(Locale.ROOT, "%nHeap per exported listener (in-process, Prometheus exporter, %s)%n", "OTel SDK");
    System.out.printf(Locale.ROOT, "%-6s %7s %14s %16s %14s %14s%n", "kind", "N", "kept KB/lsnr", "scrape KB/lsnr",
        "text B/lsnr", "total KB/lsnr");
    for (boolean busy : new boolean[] {false, true}) {
      for (int n : new int[] {500, 2000}) {
        measure(n, busy);
      }
    }
  }

  /**
   * The check on the figures: scrapes in a JVM with the launcher's heap (-Xmx96m, exit on OOM), beside a
   * ballast standing for the rest of the agent on a host with 10,000 listeners (its live heap there, about
   * 20 MB, measured with jcmd GC.heap_info), with N busy listeners exported.
   */
  @Test
  void busyListenersUnderTheLaunchersHeap() throws Exception {
    System.out.printf(Locale.ROOT, "%nBusy listeners scraped under -Xmx96m beside a 20 MB ballast%n");
    for (String encoding : List.of("gzip", "identity")) {
     for (int n : new int[] {250, 500, 1000, 2000}) {
      String javaBin = java.nio.file.Path.of(System.getProperty("java.home"), "bin", "java").toString();
      Process p = new ProcessBuilder(javaBin, "-XX:+UseSerialGC", "-Xmx96m", "-XX:+ExitOnOutOfMemoryError", "-cp",
          System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")),
          ExportMemoryBenchmark.class.getName(), Integer.toString(n), encoding).redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
      p.waitFor();
      String last = out.lines().filter(l -> !l.isBlank()).reduce((a, b) -> b).orElse("");
      System.out.printf(Locale.ROOT, "%5d busy listeners, %-8s scrapes: exit %d, %s%n", n, encoding, p.exitValue(), last);
     }
    }
  }

  /** The child of {@link #busyListenersUnderTheLaunchersHeap}: N busy listeners, three scrapes. */
  public static void main(String[] args) throws Exception {
    int n = Integer.parseInt(args[0]);
    String encoding = args.length > 1 ? args[1] : "gzip";
    byte[][] ballast = new byte[20][];
    for (int i = 0; i < ballast.length; i++) {
      ballast[i] = new byte[1 << 20];
    }
    int port = DaemonProcess.freePort();
    ListenerBook book = new ListenerBook();
    try (Telemetry telemetry = Telemetry.start(new AgentConfig.Exporters(new AgentConfig.Prometheus(true, "127.0.0.1", port),
        null), new ExportHealth(), Math.max(2000, 2 * n), new ListenerHistograms(book))) {
      BacklogMetrics metrics = new BacklogMetrics(telemetry.meter(), book,
          () -> new AgentStatus(0, 0, 0, 0, "tracepoint", Map.of(), Map.of(), List.of()));
      IntervalReport report = report(n, true);
      long bytes = 0;
      for (int i = 0; i < 3; i++) {
        book.update(report, ListenerFilter.all(), n);
        bytes = scrapeBytes(port, encoding); // counted as it streams: the scraper's memory is not the agent's
      }
      System.out.println("3 scrapes of " + bytes + " bytes, ballast " + ballast.length + " MB kept");
    }
  }

  private static long scrapeBytes(int port) throws Exception {
    return scrapeBytes(port, "identity");
  }

  /** One scrape, asking for {@code encoding} (a Prometheus server asks for gzip; curl, by default, does not). */
  private static long scrapeBytes(int port, String encoding) throws Exception {
    java.net.http.HttpResponse<java.io.InputStream> r = java.net.http.HttpClient.newHttpClient().send(
        java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + port + "/metrics"))
            .header("Accept-Encoding", encoding).build(),
        java.net.http.HttpResponse.BodyHandlers.ofInputStream());
    try (java.io.InputStream in = r.body()) {
      return in.transferTo(java.io.OutputStream.nullOutputStream());
    }
  }

  private static void measure(int n, boolean busy) throws Exception {
    long before = usedAfterGc();
    int port = DaemonProcess.freePort();
    AgentConfig.Exporters exporters = new AgentConfig.Exporters(new AgentConfig.Prometheus(true, "127.0.0.1", port),
        null);
    ListenerBook book = new ListenerBook();
    try (Telemetry telemetry = Telemetry.start(exporters, new ExportHealth(), Math.max(2000, 2 * n), new ListenerHistograms(book))) {
      BacklogMetrics metrics = new BacklogMetrics(telemetry.meter(), book,
          () -> new AgentStatus(0, 0, 0, 0, "tracepoint", Map.of(), Map.of(), List.of()));
      IntervalReport report = report(n, busy);
      for (int i = 0; i < 2; i++) {
        book.update(report, ListenerFilter.all(), n);
      }
      DaemonProcess.scrape(port); // the SDK's series exist from the first collection on
      long kept = usedAfterGc() - before;
      long allocated0 = allocatedByAllThreads();
      long text = scrapeBytes(port);
      long scrape = allocatedByAllThreads() - allocated0;
      System.out.printf(Locale.ROOT, "%-6s %7d %14.1f %16.1f %14d %14.1f%n", busy ? "busy" : "quiet", n,
          kept / 1024.0 / n, scrape / 1024.0 / n, text / n, (kept + scrape) / 1024.0 / n);
      metrics.close();
    }
  }

  private static IntervalReport report(int n, boolean busy) {
    List<Listener> listeners = new ArrayList<>(n);
    List<ListenerInterval> intervals = new ArrayList<>();
    List<BpftraceRecord.Bucket> depths = new ArrayList<>();
    List<BpftraceRecord.Bucket> waits = new ArrayList<>();
    for (int b = 0; b < 17; b++) {
      depths.add(new BpftraceRecord.Bucket(b == 0 ? 0 : 1L << (b - 1), (1L << b) - 1, 3));
    }
    for (int b = 0; b < 27; b++) {
      waits.add(new BpftraceRecord.Bucket(b == 0 ? 0 : 1L << (b - 1), (1L << b) - 1, 2));
    }
    for (int i = 0; i < n; i++) {
      int port = 1024 + i;
      Listener l = new Listener(new ListenerKey(NETNS, AddressFamily.IPV4, "10.0." + (i >> 8) + "." + (i & 255), port), 3, 4096, 4096L, 7,
          List.of(new ProcessIdentity(10_000 + i, "server" + (i % 50), "/usr/bin/server --port " + port, null)),
          Set.of(), 1_000_000L + i);
      listeners.add(l);
      if (busy) {
        intervals.add(new ListenerInterval(l, l.key(), 5, 51, 9, 2, 40, Map.of(),
            Map.of(), waits, depths, List.of(Finding.of(Trouble.ACCEPT_QUEUE_OVERFLOW, 5))));
      }
    }
    NetNamespace ns = new NetNamespace(NETNS, null, new NamespaceSysctls(4096, 2048, 1, 0),
        new ListenCounters(0, 0, 0, 0, 0, 0, 0));
    Inventory inventory = new Inventory(List.of(ns), listeners, Instant.now(), List.of());
    return new IntervalReport(Instant.now(), Duration.ofSeconds(10), inventory, Map.of(), intervals, Map.of(), Map.of(), List.of());
  }

  private static long usedAfterGc() throws InterruptedException {
    for (int i = 0; i < 3; i++) {
      System.gc();
      Thread.sleep(100);
    }
    Runtime rt = Runtime.getRuntime();
    return rt.totalMemory() - rt.freeMemory();
  }

  private static long allocatedByAllThreads() {
    com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    long sum = 0;
    for (long id : threads.getAllThreadIds()) {
      long a = threads.getThreadAllocatedBytes(id);
      sum += Math.max(0, a);
    }
    return sum;
  }
}
