package dev.backlogagent.monitoring;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The metric names of expressions as the rules and the dashboard write them. */
class PromQlTest {
  @Test
  void metricNamesOfExpressions() {
    record Case(String expr, Set<String> names) {}
    List<Case> cases = List.of(
        new Case("rate(tcp_listen_drops_total[5m]) > 0", Set.of("tcp_listen_drops_total")),
        new Case("tcp_listen_queue_size > tcp_listen_queue_limit", Set.of("tcp_listen_queue_size", "tcp_listen_queue_limit")),
        new Case("backlog_agent_tier{backlog_agent_tier=~\"counters|none\"} == 1", Set.of("backlog_agent_tier")),
        new Case("histogram_quantile(0.99, sum by (le, instance) (rate(tcp_listen_accept_wait_seconds_bucket{instance=~\"$instance\"}"
            + "[$__rate_interval])))", Set.of("tcp_listen_accept_wait_seconds_bucket")),
        new Case("time() - backlog_agent_export_last_success_seconds > 900", Set.of("backlog_agent_export_last_success_seconds")),
        new Case("a * on(instance, netns_inode) group_left(netns_name) b offset 5m", Set.of("a", "b")),
        new Case("label_values(tcp_listen_queue_limit{instance=~\"$instance\"}, netns_inode)", Set.of("tcp_listen_queue_limit")),
        new Case("label_values(limit{instance=~\"$instance\",netns_inode=~\"$netns\"}, network_local_port)", Set.of("limit")),
        new Case("label_values(backlog_agent_tier, instance)", Set.of("backlog_agent_tier")),
        new Case("sum without (otel_scope_name) (x) / (y > 0) and bool z", Set.of("x", "y", "z")),
        new Case("increase(restarts_total[1h]) > 2.5e3", Set.of("restarts_total")));
    for (Case c : cases) {
      assertThat(PromQl.metricNames(c.expr())).as(c.expr()).isEqualTo(c.names());
    }
  }
}
