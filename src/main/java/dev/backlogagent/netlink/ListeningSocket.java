package dev.backlogagent.netlink;

/**
 * One TCP socket in LISTEN state as NETLINK_SOCK_DIAG reports it.
 *
 * @param family {@link #AF_INET} or {@link #AF_INET6}
 * @param address the bound local address as inet_ntop(3) writes it (so it matches ss and bpftrace)
 * @param queue accept-queue length now (the kernel's {@code sk_ack_backlog}, ss's Recv-Q)
 * @param backlog effective backlog (the kernel's {@code sk_max_ack_backlog}, ss's Send-Q)
 * @param drops the socket's {@code sk_drops}: every SYN or third ACK it dropped since it was created
 * @param inode the socket's inode, which ties it to the processes holding it in /proc/PID/fd
 */
public record ListeningSocket(
    int family, String address, int port, long queue, long backlog, long drops, long inode) {

  public static final int AF_INET = 2;
  public static final int AF_INET6 = 10;
}
