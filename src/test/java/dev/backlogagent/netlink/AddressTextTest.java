package dev.backlogagent.netlink;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.InetAddress;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Addresses must read exactly as inet_ntop writes them, because BPF events are joined by this text. */
class AddressTextTest {

  @ParameterizedTest
  @CsvSource({
    "127.0.0.1, 127.0.0.1",
    "0.0.0.0, 0.0.0.0",
    "::, ::",
    "::1, ::1",
    "fe80:0:0:0:0:0:0:1, fe80::1",
    "2001:db8:0:0:1:0:0:1, 2001:db8::1:0:0:1",
    "2001:db8:0:1:1:1:1:1, 2001:db8:0:1:1:1:1:1",
    "1:0:0:2:0:0:0:3, 1:0:0:2::3",
    "0:0:0:0:0:ffff:c000:0201, ::ffff:192.0.2.1",
    "0:0:0:0:0:0:c000:0201, ::192.0.2.1",
    "2001:db8:0:0:0:0:0:0, 2001:db8::",
  })
  void writesLikeInetNtop(String input, String expected) throws Exception {
    byte[] raw = input.contains(":") ? ipv6Bytes(input) : InetAddress.getByName(input).getAddress();
    assertThat(AddressText.of(raw)).isEqualTo(expected);
  }

  @org.junit.jupiter.api.Test
  void refusesAnAddressOfAnotherLength() {
    assertThatThrownBy(() -> AddressText.of(new byte[5])).hasMessageContaining("4 or 16 bytes");
  }

  /** Parses a full or "::"-compressed IPv6 text without Java's v4-mapped conversion. */
  private static byte[] ipv6Bytes(String text) {
    String[] halves = text.split("::", -1);
    String[] head = halves[0].isEmpty() ? new String[0] : halves[0].split(":");
    String[] tail = halves.length > 1 && !halves[1].isEmpty() ? halves[1].split(":") : new String[0];
    int[] words = new int[8];
    for (int i = 0; i < head.length; i++) {
      words[i] = Integer.parseInt(head[i], 16);
    }
    for (int i = 0; i < tail.length; i++) {
      words[8 - tail.length + i] = Integer.parseInt(tail[i], 16);
    }
    byte[] raw = new byte[16];
    for (int i = 0; i < 8; i++) {
      raw[2 * i] = (byte) (words[i] >> 8);
      raw[2 * i + 1] = (byte) words[i];
    }
    return raw;
  }
}
