package dev.backlogagent.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import dev.backlogagent.testing.DaemonProcess;
import dev.backlogagent.testing.KernelTests;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A collector that takes connections and never answers (a black hole: a firewall that drops, a hung
 * collector): the daemon stops within 5 s on SIGTERM, and says once that exports fail, not once per export.
 */
class DaemonUnreachableCollectorTest {
  @TempDir Path dir;

  @BeforeAll
  static void kernel() {
    KernelTests.assumeKernel("the daemon with an unreachable collector");
  }

  @Test
  void sigtermStopsWithinFiveSecondsAndFailuresAreLoggedOnce() throws Exception {
    List<Socket> held = new CopyOnWriteArrayList<>();
    try (ServerSocket blackHole = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
      Thread acceptor = new Thread(() -> {
        try {
          while (true) {
            held.add(blackHole.accept()); // never read, never answered
          }
        } catch (java.io.IOException e) {
          // closed
        }
      });
      acceptor.setDaemon(true);
      acceptor.start();
      for (String protocol : List.of("grpc", "http/protobuf")) {
        Path config = DaemonProcess.config(dir, """
            interval: 1s
            state_file: %s
            tier: counters
            exporters:
              prometheus: {enabled: false}
              otlp: {endpoint: "http://127.0.0.1:%d", protocol: %s, metric_interval: 1s}
            """.formatted(dir.resolve("state.json"), blackHole.getLocalPort(), protocol));
        try (DaemonProcess daemon = DaemonProcess.start(Map.of(), "--config", config.toString())) {
          daemon.awaitStarted();
          Thread.sleep(14_000); // a dozen metric exports in flight or timed out (the SDK's default timeout is 10 s)
          long t0 = System.nanoTime();
          daemon.signal("TERM");
          assertThat(daemon.awaitExit(Duration.ofSeconds(20))).as(daemon.transcript()).isZero();
          Duration took = Duration.ofNanos(System.nanoTime() - t0);
          assertThat(took).as(protocol + ": SIGTERM to exit; " + daemon.transcript()).isLessThan(Duration.ofSeconds(5));
          List<String> err = daemon.stderr();
          assertThat(err.stream().filter(l -> l.contains("export failed")).count()).as(protocol + ": " + err).isEqualTo(1);
          assertThat(err).as(protocol + ": the SDK's own per-export lines").noneMatch(l -> l.contains("io.opentelemetry"));
        }
      }
    } finally {
      for (Socket s : held) {
        s.close();
      }
    }
  }
}
