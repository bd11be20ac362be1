package dev.backlogagent.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.backlogagent.testing.PrometheusServer.Sample;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.metrics.LongCounter;
import io.opentelemetry.exporter.prometheus.PrometheusHttpServer;
import io.opentelemetry.sdk.metrics.SdkMeterProvider;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/** A real Prometheus server scraping a real exposition: what it stores is what the target served, label by label. */
class PrometheusServerTest {
  private static final Duration TIMEOUT = Duration.ofSeconds(30);
  private static final AttributeKey<Long> PORT = AttributeKey.longKey("port");

  @Test
  void scrapes_the_sdk_prometheus_exporter_every_second_and_answers_for_the_right_label() throws Exception {
    int exporterPort = freePort();
    try (SdkMeterProvider meters = SdkMeterProvider.builder()
            .registerMetricReader(PrometheusHttpServer.builder().setHost("127.0.0.1").setPort(exporterPort).build())
            .build();
        PrometheusServer prometheus = PrometheusServer.start(exporterPort)) {
      LongCounter connections =
          meters.get("prometheus-server-test").counterBuilder("test.connections").setUnit("{connection}").build();
      connections.add(3, Attributes.of(PORT, 80L));
      connections.add(5, Attributes.of(PORT, 443L));

      List<Sample> https = prometheus.awaitQuery("test_connections_total{port=\"443\"}", s -> !s.isEmpty(), TIMEOUT);
      assertThat(https).singleElement().satisfies(s -> {
        assertThat(s.value()).isEqualTo(5.0);
        assertThat(s.labels())
            .containsEntry("port", "443")
            .containsEntry("job", PrometheusServer.JOB)
            .containsEntry("instance", prometheus.target());
      });
      assertThat(prometheus.query("test_connections_total{port=\"80\"}")).singleElement()
          .extracting(Sample::value).isEqualTo(3.0);
      assertThat(prometheus.query("up")).singleElement().extracting(Sample::value).isEqualTo(1.0);
      assertThat(prometheus.query("scalar(sum(test_connections_total))")).singleElement()
          .satisfies(s -> assertThat(s.labels()).isEmpty())
          .extracting(Sample::value).isEqualTo(8.0);

      // It keeps scraping: a later increment shows within a few scrape intervals.
      connections.add(2, Attributes.of(PORT, 443L));
      prometheus.awaitQuery("test_connections_total{port=\"443\"}", s -> s.size() == 1 && s.get(0).value() == 7.0,
          TIMEOUT);
    }
  }

  @Test
  void a_target_nobody_serves_is_down_and_a_failed_wait_says_why() throws Exception {
    try (PrometheusServer prometheus = PrometheusServer.start(freePort())) {
      prometheus.awaitQuery("up", s -> s.size() == 1 && s.get(0).value() == 0.0, TIMEOUT);

      assertThatThrownBy(() -> prometheus.awaitQuery("up", s -> s.get(0).value() == 1.0, Duration.ofSeconds(2)))
          .isInstanceOf(AssertionError.class)
          .hasMessageContaining("up")
          .hasMessageContaining("health down")
          .hasMessageContaining("connection refused");
      assertThatThrownBy(() -> prometheus.query("up{"))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("bad_data");
    }
  }

  @Test
  void closing_stops_prometheus_and_leaves_no_process_behind() throws Exception {
    PrometheusServer prometheus = PrometheusServer.start(freePort());
    int port = prometheus.port();
    String listen = "--web.listen-address=127.0.0.1:" + port;
    assertThat(processesWithArgument(listen)).hasSize(1);

    prometheus.close();
    prometheus.close(); // idempotent

    assertThat(processesWithArgument(listen)).isEmpty();
    assertThatThrownBy(() -> new Socket(InetAddress.getLoopbackAddress(), port).close())
        .isInstanceOf(ConnectException.class);
  }

  private static List<ProcessHandle> processesWithArgument(String argument) {
    return ProcessHandle.allProcesses()
        .filter(p -> p.info().arguments().map(List::of).orElse(List.of()).contains(argument))
        .filter(p -> p.info().command().map(c -> c.endsWith("/prometheus")).orElse(false))
        .toList();
  }

  private static int freePort() throws Exception {
    try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return socket.getLocalPort();
    }
  }
}
