package dev.backlogagent.decode;

/**
 * How a BPF program names a listener: its namespace, address family (2 or 10), local address as
 * inet_ntop writes it, and port. The address may be the listener's bound one or, for some hooks, the
 * connection's local address; joining to the inventory handles both.
 */
public record ListenerKey(long netns, int family, String address, int port) {
  public AddressFamily addressFamily() {
    return AddressFamily.of(family);
  }

  public String familyName() {
    return addressFamily().label();
  }
}
