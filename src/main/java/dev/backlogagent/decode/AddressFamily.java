package dev.backlogagent.decode;

import com.fasterxml.jackson.annotation.JsonValue;

/** An IP address family, by the kernel's number (AF_INET 2, AF_INET6 10) and as the agent writes it. */
public enum AddressFamily {
  IPV4(2, "ipv4"),
  IPV6(10, "ipv6");

  private final int number;
  private final String label;

  AddressFamily(int number, String label) {
    this.number = number;
    this.label = label;
  }

  /** The family of a kernel number; anything but 10 is IPv4, as the programs only report 2 and 10. */
  public static AddressFamily of(int number) {
    return number == IPV6.number ? IPV6 : IPV4;
  }

  public int number() {
    return number;
  }

  /** "ipv4" or "ipv6": network.type's values, and the family in every JSON output and the state file. */
  @JsonValue
  public String label() {
    return label;
  }

  /** How an endpoint of this family is written: 127.0.0.1:80, [::1]:80. */
  public String endpoint(String address, int port) {
    return (this == IPV6 ? "[" + address + "]" : address) + ":" + port;
  }
}
