package dev.backlogagent.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.backlogagent.testing.TestNetns;
import dev.backlogagent.testing.TestNetns.ListenerProcess;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The kernel matrix's scenarios with the ftrace tier forced: no BPF at all, the kernel's trace events read
 * from a tracefs instance of the agent's own; the same numbers against ss and nstat.
 */
class FtraceTraceCommandTest extends TraceCommandTest {

  @Override
  protected String expectedTier() {
    return "ftrace";
  }

  @Override
  protected List<String> tierArguments() {
    return List.of("--tier", "ftrace");
  }

  /**
   * What the ftrace tier loses against BPF: it cannot follow the accepted fd to its socket, so accept
   * waits are not measured; a slow accept must not be invented either.
   */
  @Override
  @Test
  protected void aSlowAcceptingServersWaitsAreMeasured() throws Exception {
    try (TestNetns ns = TestNetns.create()) {
      ListenerProcess[] server = new ListenerProcess[1];
      List<JsonNode> lines = trace(ns, 4, () -> {
        server[0] = ns.startListener("--backlog", "16", "--connect", "4", "--accept-every", "0.3");
        return null;
      });
      assertThat(ofType(lines, "slow_accept", server[0].port())).isEmpty();
      assertThat(ofType(lines, "listen", server[0].port())).singleElement()
          .satisfies(l -> assertThat(l.path("pid").asLong()).isEqualTo(server[0].pid()));
    }
  }
}
