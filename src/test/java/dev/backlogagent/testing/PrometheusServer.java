package dev.backlogagent.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.backlogagent.kernel.ChildProcess;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.HttpURLConnection;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.function.Predicate;
import java.util.stream.Stream;

/**
 * Debian's Prometheus server run as a child for one test: it scrapes one loopback target every second, keeps its
 * storage in a temporary directory, listens on a free loopback port, and answers PromQL queries. Closing it kills it
 * and removes the directory; a JVM that dies without closing it takes it along (setpriv's parent-death signal).
 */
public final class PrometheusServer implements AutoCloseable {

  /** The job label of the scraped target. */
  public static final String JOB = "target";

  /** One series of a query's result: its labels and its value (the latest one, for a range vector). */
  public record Sample(Map<String, String> labels, double value) {}

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String LOOPBACK = InetAddress.getLoopbackAddress().getHostAddress();
  private static final Duration READY_TIMEOUT = Duration.ofSeconds(30);
  private static final Duration POLL = Duration.ofMillis(250);
  private static final int START_ATTEMPTS = 3;

  private final int targetPort;
  private final Path directory;
  private final int port;
  private final ChildProcess child;
  private final Thread supervisor;
  private final CompletableFuture<ChildProcess.Exit> exit;
  private boolean closed;

  private PrometheusServer(int targetPort, Path directory, int port, Launch launch) {
    this.targetPort = targetPort;
    this.directory = directory;
    this.port = port;
    this.child = launch.child();
    this.supervisor = launch.supervisor();
    this.exit = launch.exit();
  }

  /**
   * Starts a server scraping {@code http://127.0.0.1:targetPort/metrics} every second and waits until it is ready
   * (well under a second here). The first scrape follows about 5 s later (Prometheus 2.42 applies new targets every
   * 5 s), so read with {@link #awaitQuery}. Without the prometheus binary the test skips, or fails where kernel tests
   * are required (as in CI).
   */
  public static PrometheusServer start(int targetPort) throws IOException, InterruptedException {
    return start(targetPort, List.of());
  }

  /** The same, evaluating {@code ruleFiles} (recording and alerting rules) every second. */
  public static PrometheusServer start(int targetPort, List<Path> ruleFiles) throws IOException, InterruptedException {
    Path binary = KernelTests.requireCommand("prometheus", "a test scraping with a Prometheus server");
    Path directory = Files.createTempDirectory("bltest-prometheus-");
    try {
      Files.writeString(directory.resolve("prometheus.yml"), config(targetPort, ruleFiles));
      IOException lastFailure = null;
      for (int attempt = 0; attempt < START_ATTEMPTS; attempt++) {
        // Another process may take the free port between our look and prometheus' bind: then try another.
        int port = freePort();
        PrometheusServer server = new PrometheusServer(targetPort, directory, port, launch(binary, directory, port));
        try {
          server.awaitReady();
          return server;
        } catch (IOException e) {
          server.close(false);
          lastFailure = e;
          if (!e.getMessage().contains("address already in use")) {
            break;
          }
        }
      }
      throw lastFailure;
    } catch (IOException | RuntimeException | InterruptedException e) {
      deleteRecursively(directory);
      throw e;
    }
  }

  /** The port of its web API, on 127.0.0.1. */
  public int port() {
    return port;
  }

  /** {@code http://127.0.0.1:PORT}, its web API. */
  public URI url() {
    return URI.create("http://" + LOOPBACK + ":" + port);
  }

  /** {@code 127.0.0.1:PORT} of the scraped target: the instance label of its series. */
  public String target() {
    return LOOPBACK + ":" + targetPort;
  }

  /**
   * Evaluates {@code promql} now (/api/v1/query). An instant vector gives a sample per series, a scalar one sample
   * without labels, a range vector each series' latest value. A query Prometheus rejects throws
   * IllegalArgumentException with its reason.
   */
  public List<Sample> query(String promql) throws IOException {
    JsonNode answer = get("/api/v1/query?query=" + URLEncoder.encode(promql, StandardCharsets.UTF_8));
    if (!"success".equals(answer.path("status").asText())) {
      throw new IllegalArgumentException(
          "prometheus rejected " + promql + ": " + answer.path("errorType").asText() + ": " + answer.path("error").asText());
    }
    JsonNode data = answer.path("data");
    JsonNode result = data.path("result");
    List<Sample> samples = new ArrayList<>();
    switch (data.path("resultType").asText()) {
      case "vector" -> result.forEach(s -> samples.add(new Sample(labels(s.path("metric")), number(s.path("value")))));
      case "matrix" -> result.forEach(s -> {
        JsonNode values = s.path("values");
        samples.add(new Sample(labels(s.path("metric")), number(values.get(values.size() - 1))));
      });
      case "scalar" -> samples.add(new Sample(Map.of(), number(result)));
      default -> throw new IllegalArgumentException(promql + " gives a " + data.path("resultType").asText()
          + ", not a vector or a scalar");
    }
    return List.copyOf(samples);
  }

  /** One alert as /api/v1/alerts lists it: pending (its expression holds) or firing (for its `for:` too). */
  public record Alert(Map<String, String> labels, Map<String, String> annotations, String state, double value) {}

  /** The alerts of the loaded rules whose expressions hold now (/api/v1/alerts). */
  public List<Alert> alerts() throws IOException {
    JsonNode answer = get("/api/v1/alerts");
    List<Alert> alerts = new ArrayList<>();
    for (JsonNode a : answer.path("data").path("alerts")) {
      alerts.add(new Alert(labels(a.path("labels")), labels(a.path("annotations")), a.path("state").asText(),
          Double.parseDouble(a.path("value").asText("NaN"))));
    }
    return List.copyOf(alerts);
  }

  /**
   * Queries every 250 ms until the result satisfies {@code condition} and returns it; fails after {@code timeout}
   * with the last result and the target's scrape health and last error.
   */
  public List<Sample> awaitQuery(String promql, Predicate<List<Sample>> condition, Duration timeout)
      throws IOException, InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      List<Sample> samples;
      try {
        samples = query(promql);
      } catch (IOException e) {
        throw new IOException(e.getMessage() + (exit.isDone() ? "; prometheus has exited: " + exitReport() : ""), e);
      }
      if (condition.test(samples)) {
        return samples;
      }
      if (System.nanoTime() >= deadline) {
        throw new AssertionError("waited " + timeout.toMillis() + " ms for " + promql
            + " to satisfy the condition; last result " + samples + "; " + scrapeReport());
      }
      Thread.sleep(POLL.toMillis());
    }
  }

  /** Kills prometheus (SIGTERM, then SIGKILL), waits for it, and removes its directory; idempotent. */
  @Override
  public void close() {
    close(true);
  }

  private void close(boolean removeDirectory) {
    if (!closed) {
      closed = true;
      child.close();
      try {
        supervisor.join(Duration.ofSeconds(5).toMillis());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    if (removeDirectory) {
      deleteRecursively(directory);
    }
  }

  /** The child, the thread that started it and waits for it, and how it ended. */
  private record Launch(ChildProcess child, Thread supervisor, CompletableFuture<ChildProcess.Exit> exit) {}

  private static Launch launch(Path binary, Path directory, int port) throws IOException, InterruptedException {
    List<String> command =
        List.of(
            binary.toString(),
            "--config.file=" + directory.resolve("prometheus.yml"),
            "--storage.tsdb.path=" + directory.resolve("data"),
            "--web.listen-address=" + LOOPBACK + ":" + port);
    CompletableFuture<ChildProcess> started = new CompletableFuture<>();
    CompletableFuture<ChildProcess.Exit> exit = new CompletableFuture<>();
    // The parent-death signal follows the thread that started the child, so that thread lives as long as it does.
    Thread supervisor =
        new Thread(
            () -> {
              ChildProcess child;
              try {
                child = ChildProcess.start("prometheus-" + port, command);
              } catch (IOException | RuntimeException e) {
                started.completeExceptionally(e);
                return;
              }
              started.complete(child);
              try {
                exit.complete(child.await(Duration.ofDays(365)));
              } catch (InterruptedException e) {
                child.close();
              }
            },
            "prometheus-" + port);
    supervisor.setDaemon(true);
    supervisor.start();
    try {
      return new Launch(started.get(), supervisor, exit);
    } catch (ExecutionException e) {
      throw e.getCause() instanceof IOException io ? io : new IOException("prometheus did not start", e.getCause());
    }
  }

  private void awaitReady() throws IOException, InterruptedException {
    long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
    while (true) {
      if (exit.isDone()) {
        throw new IOException("prometheus exited before it was ready: " + exitReport());
      }
      try {
        HttpURLConnection ready = open("/-/ready");
        if (ready.getResponseCode() == 200) {
          return;
        }
      } catch (IOException e) {
        // Not listening yet.
      }
      if (System.nanoTime() >= deadline) {
        throw new IOException("prometheus was not ready on " + url() + " after " + READY_TIMEOUT.toSeconds() + " s");
      }
      Thread.sleep(100);
    }
  }

  private String exitReport() {
    ChildProcess.Exit e = exit.getNow(null);
    return e == null ? "still running" : "status " + e.status() + ", log: " + tail(e.stderr());
  }

  private String scrapeReport() {
    try {
      List<String> targets = new ArrayList<>();
      for (JsonNode t : get("/api/v1/targets").path("data").path("activeTargets")) {
        targets.add(t.path("scrapeUrl").asText() + " health " + t.path("health").asText() + ", last error \""
            + t.path("lastError").asText() + "\", last scrape " + t.path("lastScrape").asText());
      }
      return "scraped target: " + (targets.isEmpty() ? "none yet" : String.join("; ", targets));
    } catch (IOException | RuntimeException e) {
      return "scraped target unknown (" + e + ")" + (exit.isDone() ? "; prometheus has exited: " + exitReport() : "");
    }
  }

  private JsonNode get(String pathAndQuery) throws IOException {
    HttpURLConnection connection = open(pathAndQuery);
    int status = connection.getResponseCode();
    // Prometheus answers errors (a bad query: 400, 422) with a JSON body too.
    try (InputStream in = status < 400 ? connection.getInputStream() : connection.getErrorStream()) {
      if (in == null) {
        throw new IOException("GET " + pathAndQuery + ": HTTP " + status + " without a body");
      }
      return JSON.readTree(in);
    }
  }

  private HttpURLConnection open(String pathAndQuery) throws IOException {
    HttpURLConnection connection = (HttpURLConnection) url().resolve(pathAndQuery).toURL().openConnection();
    connection.setConnectTimeout(2_000);
    connection.setReadTimeout(10_000);
    return connection;
  }

  private static Map<String, String> labels(JsonNode metric) {
    Map<String, String> labels = new LinkedHashMap<>();
    metric.fields().forEachRemaining(f -> labels.put(f.getKey(), f.getValue().asText()));
    return labels;
  }

  /** [timestamp, "value"], the value as Prometheus writes it (+Inf, -Inf and NaN included). */
  private static double number(JsonNode pair) {
    String text = pair.get(1).asText();
    return switch (text) {
      case "+Inf" -> Double.POSITIVE_INFINITY;
      case "-Inf" -> Double.NEGATIVE_INFINITY;
      default -> Double.parseDouble(text);
    };
  }

  private static String config(int targetPort, List<Path> ruleFiles) {
    // scrape_timeout may not exceed scrape_interval, whose default (10 s) would be too slow for tests.
    return String.join(
        "\n",
        "global:",
        "  scrape_interval: 1s",
        "  scrape_timeout: 1s",
        "  evaluation_interval: 1s",
        "rule_files: [" + String.join(", ", ruleFiles.stream().map(f -> "'" + f.toAbsolutePath() + "'").toList()) + "]",
        "scrape_configs:",
        "  - job_name: " + JOB,
        "    static_configs:",
        "      - targets: ['" + LOOPBACK + ":" + targetPort + "']",
        "");
  }

  private static int freePort() throws IOException {
    try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return socket.getLocalPort();
    }
  }

  private static String tail(String log) {
    List<String> lines = log.lines().toList();
    return String.join("\n", lines.subList(Math.max(0, lines.size() - 20), lines.size()));
  }

  private static void deleteRecursively(Path directory) {
    if (!Files.exists(directory)) {
      return;
    }
    try (Stream<Path> paths = Files.walk(directory)) {
      for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    } catch (IOException e) {
      throw new UncheckedIOException("could not remove " + directory, e);
    }
  }
}
