package dev.backlogagent.decode;

/**
 * Where a listener listens: its network namespace, address family, local address as inet_ntop writes it,
 * and port. The one name of a listener's place from the kernel's events to the exported series: a BPF
 * event, the inventory's {@code Listener}, the telemetry identity and the requested-backlog book all hold
 * it. In an event the address may be the listener's bound one or, for some hooks, the connection's local
 * address; joining to the inventory handles both.
 *
 * @param netns the inode of the network namespace
 */
public record ListenerKey(long netns, AddressFamily family, String address, int port) {

  /** How a person writes it: 127.0.0.1:80, [::1]:80. */
  public String endpoint() {
    return family.endpoint(address, port);
  }

  /**
   * The namespace and port as one value, the address left out: what an event is joined to the listeners
   * of, since a handshake on 127.0.0.1 belongs to the listener bound to 0.0.0.0 of the same port.
   * (Namespace inodes are 32-bit, ports 16-bit, so the two never collide.)
   */
  public long namespacePort() {
    return netns << 16 | port;
  }
}
