package dev.backlogagent.ftrace;

import static org.assertj.core.api.Assertions.assertThat;

import dev.backlogagent.decode.AddressFamily;
import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.listener.Inventory;
import dev.backlogagent.listener.Listener;
import java.time.Instant;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Which namespace a namespace-less event lands in, as a table of situations. */
class ListenerAttributionTest {
  private static final long A = 4026532001L;
  private static final long B = 4026532002L;

  private static Listener listener(long netns, AddressFamily family, String address, int port) {
    return new Listener(new ListenerKey(netns, family, address, port), 0, 128, null, 0, List.of(), Set.of(), netns + port);
  }

  private static final Inventory TWO_NAMESPACES = new Inventory(List.of(), List.of(
      listener(A, AddressFamily.IPV4, "0.0.0.0", 8080),
      listener(B, AddressFamily.IPV4, "127.0.0.1", 8080),
      listener(A, AddressFamily.IPV6, "::", 9090),
      listener(B, AddressFamily.IPV4, "10.0.0.2", 7070),
      listener(A, AddressFamily.IPV4, "0.0.0.0", 6060),
      listener(B, AddressFamily.IPV4, "0.0.0.0", 6060)), Instant.EPOCH, List.of());

  static Stream<Arguments> situations() {
    return Stream.of(
        Arguments.of("one namespace listens on the port: by port", AddressFamily.IPV4, "10.0.0.2", 7070, -1L,
            ListenerAttribution.Outcome.BY_PORT, B),
        Arguments.of("a dual-stack wildcard takes IPv4 too", AddressFamily.IPV4, "192.168.1.5", 9090, -1L,
            ListenerAttribution.Outcome.BY_PORT, A),
        Arguments.of("a listener bound to 127.0.0.1 does not take another address", AddressFamily.IPV4, "192.168.1.5", 8080, B,
            ListenerAttribution.Outcome.BY_PORT, A),
        Arguments.of("two wildcards would take it, off loopback: ambiguous, never guessed", AddressFamily.IPV4, "192.168.1.5", 6060, A,
            ListenerAttribution.Outcome.AMBIGUOUS, 0L),
        Arguments.of("two namespaces on loopback: the sending task's namespace", AddressFamily.IPV4, "127.0.0.1", 8080, B,
            ListenerAttribution.Outcome.BY_TASK, B),
        Arguments.of("two namespaces on loopback, the task is a kernel thread: ambiguous", AddressFamily.IPV4, "127.0.0.1", 8080, -1L,
            ListenerAttribution.Outcome.AMBIGUOUS, 0L),
        Arguments.of("nobody listens there", AddressFamily.IPV4, "127.0.0.1", 1234, A, ListenerAttribution.Outcome.UNKNOWN, 0L));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("situations")
  void theNamespaceIsFoundOrTheEventCounted(String situation, AddressFamily family, String address, int port, long taskNetns,
      ListenerAttribution.Outcome outcome, long netns) {
    ListenerAttribution attribution = new ListenerAttribution(() -> TWO_NAMESPACES);
    ListenerAttribution.Result r = attribution.byPortOrTask(family, address, port, () -> taskNetns);
    assertThat(r.outcome()).isEqualTo(outcome);
    assertThat(r.key().netns()).isEqualTo(netns);
  }

  @org.junit.jupiter.api.Test
  void aListenerKnownByItsSocketIsExactWhateverElseListensOnItsPort() {
    ListenerAttribution attribution = new ListenerAttribution(() -> TWO_NAMESPACES);
    ListenerKey born = new ListenerKey(B, AddressFamily.IPV4, "127.0.0.1", 8080);
    attribution.learn(0xffff888102a22e40L, born);
    assertThat(attribution.attribute(0xffff888102a22e40L, AddressFamily.IPV4, "127.0.0.1", 8080))
        .isEqualTo(new ListenerAttribution.Result(born, ListenerAttribution.Outcome.EXACT));
    attribution.forget(0xffff888102a22e40L);
    assertThat(attribution.attribute(0xffff888102a22e40L, AddressFamily.IPV4, "127.0.0.1", 8080).outcome())
        .isEqualTo(ListenerAttribution.Outcome.AMBIGUOUS);
  }
}
