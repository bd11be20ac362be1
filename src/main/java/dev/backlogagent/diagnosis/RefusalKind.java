package dev.backlogagent.diagnosis;

import java.util.Locale;

/**
 * How the kprobe tier classifies a refused SYN or third ACK, one to one with the kernel's counters:
 * {@code accept} = ListenOverflows, {@code syn} = TCPReqQFullDrop, {@code cookie} = TCPReqQFullDoCookies.
 */
public enum RefusalKind {
  ACCEPT,
  SYN,
  COOKIE;

  /** The kind as the programs print it, or null for a word the agent does not know. */
  public static RefusalKind parse(String word) {
    if (word == null) {
      return null;
    }
    return switch (word.toLowerCase(Locale.ROOT)) {
      case "accept" -> ACCEPT;
      case "syn" -> SYN;
      case "cookie" -> COOKIE;
      default -> null;
    };
  }

  public String word() {
    return name().toLowerCase(Locale.ROOT);
  }
}
