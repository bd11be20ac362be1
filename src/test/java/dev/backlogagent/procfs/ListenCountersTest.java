package dev.backlogagent.procfs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import org.junit.jupiter.api.Test;

class ListenCountersTest {
  private static final String NETSTAT =
      "TcpExt: SyncookiesSent SyncookiesRecv SyncookiesFailed ListenOverflows ListenDrops TCPReqQFullDoCookies TCPReqQFullDrop\n"
          + "TcpExt: 3 2 1 105 21659 7 20661\n"
          + "IpExt: InNoRoutes InTruncatedPkts\n"
          + "IpExt: 0 0\n";

  @Test
  void readsTheListenerCountersOfTcpExtByName() throws IOException {
    ListenCounters c = ListenCounters.parse(NETSTAT);
    assertThat(c).isEqualTo(new ListenCounters(105, 21659, 20661, 7, 3, 2, 1));
  }

  @Test
  void aCounterThisKernelLacksReadsAsZero() throws IOException {
    ListenCounters c = ListenCounters.parse("TcpExt: ListenOverflows\nTcpExt: 9\n");
    assertThat(c.listenOverflows()).isEqualTo(9);
    assertThat(c.reqqFullCookies()).isZero();
  }

  @Test
  void aTruncatedOrGarbledFileIsAnErrorThatSaysWhat() {
    assertThatThrownBy(() -> ListenCounters.parse("TcpExt: ListenOverflows ListenDrops\nTcpExt: 9\n"))
        .isInstanceOf(IOException.class).hasMessageContaining("2 names but 1 values");
    assertThatThrownBy(() -> ListenCounters.parse("TcpExt: ListenOverflows\nTcpExt: x\n"))
        .isInstanceOf(IOException.class).hasMessageContaining("ListenOverflows is 'x'");
    assertThatThrownBy(() -> ListenCounters.parse("IpExt: A\nIpExt: 1\n"))
        .isInstanceOf(IOException.class).hasMessageContaining("no TcpExt");
  }
}
