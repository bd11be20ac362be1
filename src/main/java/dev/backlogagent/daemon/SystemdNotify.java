package dev.backlogagent.daemon;

import com.sun.jna.LastErrorException;
import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.NativeLong;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Tells systemd how the daemon is doing, as sd_notify(3) does but without libsystemd: each message is one
 * datagram of {@code KEY=value} lines sent to the AF_UNIX socket that {@code $NOTIFY_SOCKET} names.
 *
 * <p>Without {@code NOTIFY_SOCKET} (not started by systemd as {@code Type=notify}) every call does nothing.
 * Nothing here throws: a socket that is gone or refuses is logged once, and the daemon carries on, as a
 * daemon must not die because its supervisor cannot be told something.
 *
 * <p>Java's channels do not do unix datagrams (JDK 17 has unix stream sockets only), hence socket(2),
 * sendto(2) and close(2) through JNA. A socket per message, as libsystemd does: messages are rare (start,
 * reload, stop, a status line per interval, a watchdog ping every few seconds).
 */
public final class SystemdNotify {

  private static final System.Logger LOG = System.getLogger(SystemdNotify.class.getName());

  // sizeof(struct sockaddr_un): a 2-byte family and 108 bytes of sun_path.
  private static final int SUN_PATH_OFFSET = 2;
  private static final int SUN_PATH_SIZE = 108;

  private final String socket;
  private final byte[] address;
  private final Optional<Duration> watchdogInterval;
  private final AtomicBoolean failedOnce = new AtomicBoolean();

  private SystemdNotify(String socket, byte[] address, Optional<Duration> watchdogInterval) {
    this.socket = socket;
    this.address = address;
    this.watchdogInterval = watchdogInterval;
  }

  /** From this process's environment: {@code NOTIFY_SOCKET}, {@code WATCHDOG_USEC}, {@code WATCHDOG_PID}. */
  public static SystemdNotify fromEnvironment() {
    return fromEnvironment(System.getenv(), ProcessHandle.current().pid());
  }

  /**
   * From {@code environment} as if it were this process's, which is {@code pid}: the pid decides whether a
   * {@code WATCHDOG_PID} means us (a child that inherited the variables must not ping for its parent).
   */
  public static SystemdNotify fromEnvironment(Map<String, String> environment, long pid) {
    String socket = environment.get("NOTIFY_SOCKET");
    byte[] address = null;
    if (socket != null && !socket.isEmpty()) {
      address = socketAddress(socket);
      if (address == null) {
        LOG.log(System.Logger.Level.WARNING,
            "NOTIFY_SOCKET={0} is not an absolute path or an @abstract name of at most 107 bytes; not notifying systemd",
            socket);
      }
    }
    return new SystemdNotify(socket, address, watchdogInterval(environment, pid));
  }

  /** Whether there is a socket to notify: messages are sent, not dropped. */
  public boolean enabled() {
    return address != null;
  }

  /** Startup is finished: {@code READY=1}. For the daemon: sent once its BPF programs are attached. */
  public boolean ready() {
    return send("READY=1");
  }

  /** {@code READY=1} and a status line in one message, so that the unit turns active with its status. */
  public boolean ready(String status) {
    return send("READY=1\nSTATUS=" + oneLine(status));
  }

  /** A free-form line that {@code systemctl status} shows: {@code STATUS=...} (line breaks become spaces). */
  public boolean status(String status) {
    return send("STATUS=" + oneLine(status));
  }

  /**
   * A reload began: {@code RELOADING=1} with {@code MONOTONIC_USEC} (CLOCK_MONOTONIC, which System.nanoTime
   * reads on Linux; systemd 253's Type=notify-reload requires it). Send {@link #ready()} when it is done.
   */
  public boolean reloading() {
    return send("RELOADING=1\nMONOTONIC_USEC=" + System.nanoTime() / 1_000);
  }

  /** Shutdown began: {@code STOPPING=1}. */
  public boolean stopping() {
    return send("STOPPING=1");
  }

  /** Still alive: {@code WATCHDOG=1}. Only meaningful when {@link #watchdogInterval()} is present. */
  public boolean watchdog() {
    return send("WATCHDOG=1");
  }

  /** Startup or shutdown needs longer: {@code EXTEND_TIMEOUT_USEC}, counted from now, not from the start. */
  public boolean extendTimeout(Duration atLeast) {
    return send("EXTEND_TIMEOUT_USEC=" + Math.max(0, atLeast.toNanos() / 1_000));
  }

  /**
   * How often to call {@link #watchdog()}: half of {@code WATCHDOG_USEC}, as sd_watchdog_enabled(3)
   * advises; empty when the unit has no {@code WatchdogSec=} or the watchdog is meant for another process.
   */
  public Optional<Duration> watchdogInterval() {
    return watchdogInterval;
  }

  private boolean send(String message) {
    if (address == null) {
      return false;
    }
    byte[] bytes = message.getBytes(StandardCharsets.UTF_8);
    int fd = -1;
    try {
      fd = Libc.INSTANCE.socket(Libc.AF_UNIX, Libc.SOCK_DGRAM | Libc.SOCK_CLOEXEC, 0);
      // Never block: a systemd that does not read its socket must not stall the daemon's loop.
      Libc.INSTANCE.sendto(fd, bytes, new NativeLong(bytes.length), Libc.MSG_NOSIGNAL | Libc.MSG_DONTWAIT, address,
          address.length);
      return true;
    } catch (LastErrorException e) {
      failed(message, e.getMessage());
      return false;
    } catch (RuntimeException | LinkageError e) {
      // JNA could not load (no native library for this platform, no writable temp directory), or worse.
      failed(message, e.toString());
      return false;
    } finally {
      if (fd >= 0) {
        try {
          Libc.INSTANCE.close(fd);
        } catch (LastErrorException ignored) {
          // the message went out or did not; close has nothing to add
        }
      }
    }
  }

  // One warning per instance: a socket that is gone stays gone, and a status per interval must not spam the log.
  private void failed(String message, String reason) {
    String first = message.lines().findFirst().orElse("");
    if (failedOnce.compareAndSet(false, true)) {
      LOG.log(System.Logger.Level.WARNING, "cannot notify systemd through {0} ({1}): {2}; further failures are logged at debug level",
          socket, first, reason);
    } else {
      LOG.log(System.Logger.Level.DEBUG, "cannot notify systemd through {0} ({1}): {2}", socket, first, reason);
    }
  }

  /** struct sockaddr_un for {@code socket}, cut to its used length; null when it cannot be one. */
  static byte[] socketAddress(String socket) {
    byte[] path = socket.getBytes(StandardCharsets.UTF_8);
    boolean pathname = socket.startsWith("/");
    boolean abstractName = socket.startsWith("@") && path.length > 1;
    // A pathname needs its terminating NUL in sun_path; an abstract name is length-delimited, no NUL.
    int used = pathname ? path.length + 1 : path.length;
    if (!(pathname || abstractName) || used > SUN_PATH_SIZE) {
      return null;
    }
    ByteBuffer b = ByteBuffer.allocate(SUN_PATH_OFFSET + used).order(ByteOrder.nativeOrder());
    b.putShort((short) Libc.AF_UNIX);
    b.put(path);
    if (abstractName) {
      b.put(SUN_PATH_OFFSET, (byte) 0); // '@' stands for the leading NUL of the abstract namespace
    }
    return b.array();
  }

  private static Optional<Duration> watchdogInterval(Map<String, String> environment, long pid) {
    String usec = environment.get("WATCHDOG_USEC");
    if (usec == null) {
      return Optional.empty();
    }
    String watchdogPid = environment.get("WATCHDOG_PID");
    try {
      if (watchdogPid != null && Long.parseLong(watchdogPid.strip()) != pid) {
        return Optional.empty();
      }
      long micros = Long.parseLong(usec.strip());
      return micros > 0 ? Optional.of(Duration.ofNanos(micros * 1_000 / 2)) : Optional.empty();
    } catch (NumberFormatException e) {
      LOG.log(System.Logger.Level.WARNING, "ignoring WATCHDOG_USEC={0} WATCHDOG_PID={1}: not numbers", usec, watchdogPid);
      return Optional.empty();
    }
  }

  private static String oneLine(String text) {
    // A line break would start a new KEY=value assignment.
    return text.replaceAll("[\\x00-\\x1f]+", " ");
  }

  /** socket(2), sendto(2), close(2). Loaded on first use, so that an environment without NOTIFY_SOCKET never loads JNA. */
  private interface Libc extends Library {
    Libc INSTANCE = Native.load("c", Libc.class);

    int AF_UNIX = 1;
    int SOCK_DGRAM = 2;
    int SOCK_CLOEXEC = 0x80000;
    int MSG_DONTWAIT = 0x40;
    int MSG_NOSIGNAL = 0x4000;

    int socket(int domain, int type, int protocol) throws LastErrorException;

    NativeLong sendto(int fd, byte[] buf, NativeLong len, int flags, byte[] address, int addressLength)
        throws LastErrorException;

    int close(int fd) throws LastErrorException;
  }
}
