package dev.backlogagent.netlink;

/**
 * Writes an address the way glibc's inet_ntop(3) does, which is also how ss and bpftrace's ntop()
 * write it; events from BPF are joined to listeners by this text, so it must match theirs exactly.
 * (Java's own InetAddress writes IPv6 uncompressed and turns v4-mapped addresses into IPv4.)
 */
public final class AddressText {
  private AddressText() {}

  /** A 4-byte IPv4 or 16-byte IPv6 address in network byte order. */
  public static String of(byte[] raw) {
    if (raw.length == 4) {
      return ipv4(raw, 0);
    }
    if (raw.length != 16) {
      throw new IllegalArgumentException("an address has 4 or 16 bytes, not " + raw.length);
    }
    int[] words = new int[8];
    for (int i = 0; i < 8; i++) {
      words[i] = (Byte.toUnsignedInt(raw[2 * i]) << 8) | Byte.toUnsignedInt(raw[2 * i + 1]);
    }
    // The longest run of two or more zero words becomes "::" (the first one on a tie), as glibc does.
    int bestBase = -1;
    int bestLength = 0;
    for (int i = 0; i < 8; ) {
      if (words[i] != 0) {
        i++;
        continue;
      }
      int j = i;
      while (j < 8 && words[j] == 0) {
        j++;
      }
      if (j - i > bestLength) {
        bestBase = i;
        bestLength = j - i;
      }
      i = j;
    }
    if (bestLength < 2) {
      bestBase = -1;
    }
    StringBuilder text = new StringBuilder(39);
    for (int i = 0; i < 8; i++) {
      if (bestBase >= 0 && i >= bestBase && i < bestBase + bestLength) {
        if (i == bestBase) {
          text.append(':');
        }
        continue;
      }
      if (i != 0) {
        text.append(':');
      }
      // IPv4-compatible (::a.b.c.d) and IPv4-mapped (::ffff:a.b.c.d) end in dotted form.
      if (i == 6
          && bestBase == 0
          && (bestLength == 6 || (bestLength == 5 && words[5] == 0xffff))) {
        text.append(ipv4(raw, 12));
        break;
      }
      text.append(Integer.toHexString(words[i]));
    }
    if (bestBase >= 0 && bestBase + bestLength == 8) {
      text.append(':');
    }
    return text.toString();
  }

  private static String ipv4(byte[] raw, int at) {
    return Byte.toUnsignedInt(raw[at])
        + "."
        + Byte.toUnsignedInt(raw[at + 1])
        + "."
        + Byte.toUnsignedInt(raw[at + 2])
        + "."
        + Byte.toUnsignedInt(raw[at + 3]);
  }
}
