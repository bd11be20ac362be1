package dev.backlogagent.decode;

/**
 * A TCP state as the kernel numbers it (an ABI: include/net/tcp_states.h), plus 0 for "no socket", which
 * tcp_send_reset reports for a reset sent on behalf of no socket at all (a port nobody listens on).
 */
public enum TcpState {
  NO_SOCKET,
  ESTABLISHED,
  SYN_SENT,
  SYN_RECV,
  FIN_WAIT1,
  FIN_WAIT2,
  TIME_WAIT,
  CLOSE,
  CLOSE_WAIT,
  LAST_ACK,
  LISTEN,
  CLOSING,
  NEW_SYN_RECV,
  /** A socket bound but never connected or listening (6.7+). */
  BOUND_INACTIVE;

  /** The state of a kernel number, or null for a number this agent does not know. */
  public static TcpState of(int number) {
    TcpState[] all = values();
    return number >= 0 && number < all.length ? all[number] : null;
  }

  /** The kernel's name (LISTEN, SYN_RECV, ...), or the number itself when unknown. */
  public static String name(int number) {
    TcpState s = of(number);
    return s == null ? Integer.toString(number) : s.name();
  }
}
