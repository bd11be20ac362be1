package dev.backlogagent.diagnosis;

import dev.backlogagent.decode.AddressFamily;
import static org.assertj.core.api.Assertions.assertThat;

import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.listener.Listener;
import dev.backlogagent.listener.Trouble;
import dev.backlogagent.procfs.ListenCounters;
import dev.backlogagent.procfs.NamespaceSysctls;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The one vocabulary: each kind in its own unit, the same words wherever a finding is said (docs/diagnosis.md). */
class SentencesTest {
  private static final Listener SMALL = new Listener(new ListenerKey(1, AddressFamily.IPV4, "127.0.0.1", 8080), 5, 4, 4L, 0, List.of(), Set.of(), 7);
  private static final Listener FLOODED = new Listener(new ListenerKey(1, AddressFamily.IPV4, "127.0.0.1", 8081), 0, 128, null, 0, List.of(), Set.of(), 8);
  private static final NamespaceSysctls COOKIES = new NamespaceSysctls(4096, 2048, 1, 0);
  private static final Duration SECOND = Duration.ofSeconds(1);

  @Test
  void anAcceptQueueOverflowCountsSynsAndThirdAcksAndSaysWhatTheApplicationDid() {
    Sentences.Context c = new Sentences.Context(SMALL, COOKIES, null, 4);
    assertThat(Sentences.describe(new Finding(Trouble.ACCEPT_QUEUE_OVERFLOW, 35, AcceptPace.STALLED, 0, false), c, SECOND))
        .isEqualTo("accept queue full 5/4 — 35 SYNs and third ACKs dropped in 1 s; the application accepted no connection "
            + "in 1 s: it is stalled (a bigger backlog would not help); backlog 4 as requested");
    assertThat(Sentences.describe(new Finding(Trouble.ACCEPT_QUEUE_OVERFLOW, 20, AcceptPace.SLOW, 3, false), c, SECOND))
        .contains("20 SYNs and third ACKs dropped in 1 s; the application accepted 3 in 1 s, fewer than arrived");
    assertThat(Sentences.brief(List.of(new Finding(Trouble.ACCEPT_QUEUE_OVERFLOW, 35, AcceptPace.STALLED, 0, false))))
        .isEqualTo("35 SYNs and third ACKs (accept queue full, application stalled)");
  }

  @Test
  void withCookiesOnTheDropsAreSynsDroppedAndTheCookiesAreSentNotDropped() {
    ListenCounters delta = new ListenCounters(0, 10255, 0, 9600, 403, 0, 0);
    Sentences.Context c = new Sentences.Context(FLOODED, COOKIES, delta, -1);
    assertThat(Sentences.describe(Finding.of(Trouble.SYN_DROPPED, 10338), c, SECOND))
        .isEqualTo("10338 SYNs dropped in 1 s although SYN cookies are on (tcp_syncookies=1): the kernel could not answer "
            + "them (TCPReqQFullDoCookies +9600, SyncookiesSent +403) — typically no route back to a spoofed source");
    assertThat(Sentences.describe(Finding.of(Trouble.SYNCOOKIES, 403), c, SECOND))
        .isEqualTo("SYN queue full — answered with SYN cookies, 403 SYN cookies sent in 1 s (tcp_syncookies=1)");
    assertThat(Sentences.brief(List.of(Finding.of(Trouble.SYNCOOKIES, 403), Finding.of(Trouble.SYN_DROPPED, 10338))))
        .as("drops first").isEqualTo("10338 SYNs (SYNs not answered), 403 SYN cookies (sent, SYN queue full)");
  }

  @Test
  void dropsNoCounterExplainsSayWhetherTheAcceptQueueWasFull() {
    Finding unexplained = Finding.of(Trouble.UNEXPLAINED_DROPS, 4);
    assertThat(Sentences.describe(unexplained, new Sentences.Context(SMALL, COOKIES, null, 4), SECOND))
        .isEqualTo("4 packets dropped in 1 s beyond the accept queue's overflows; neither ListenOverflows nor ListenDrops "
            + "counts them");
    assertThat(Sentences.headline(unexplained, SMALL, COOKIES)).isEqualTo("dropping at the door beyond the overflows the kernel counts");
    assertThat(Sentences.describe(unexplained, new Sentences.Context(FLOODED, COOKIES, null, -1), SECOND))
        .isEqualTo("4 packets dropped in 1 s; neither queue was seen full and the namespace's counters do not say why");
    assertThat(Sentences.headline(unexplained, FLOODED, COOKIES)).isEqualTo("dropping at the door; no queue was seen full");
  }

  @Test
  void periodsAreTheRealTimeInWords() {
    assertThat(Sentences.period(Duration.ofMillis(1000))).isEqualTo("1 s");
    assertThat(Sentences.period(Duration.ofMillis(3300))).isEqualTo("3.3 s");
    assertThat(Sentences.period(Duration.ofMillis(420))).isEqualTo("0.4 s");
    assertThat(Sentences.count(Trouble.SYN_QUEUE_OVERFLOW, 1)).isEqualTo("1 SYN");
    assertThat(Sentences.count(Trouble.UNEXPLAINED_DROPS, 7)).isEqualTo("7 packets");
  }
}
