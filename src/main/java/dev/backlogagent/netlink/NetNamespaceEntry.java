package dev.backlogagent.netlink;

import com.sun.jna.LastErrorException;
import java.io.IOException;

/**
 * Moves the calling thread into another network namespace and back.
 *
 * <p>setns(2) with CLONE_NEWNET changes only the calling thread, so a dedicated thread can visit every
 * namespace while the rest of the JVM stays home. While inside, netlink sockets, {@code /proc/sys/net}
 * and {@code /proc/thread-self/net} all show that namespace.
 */
public final class NetNamespaceEntry implements AutoCloseable {
  private final LibC libc = LibC.INSTANCE;
  private final int home;
  private boolean closed;

  private NetNamespaceEntry(int home) {
    this.home = home;
  }

  /** Remembers the calling thread's own namespace so that {@link #close()} can return to it. */
  public static NetNamespaceEntry fromHere() throws IOException {
    return new NetNamespaceEntry(openNamespace("/proc/thread-self/ns/net"));
  }

  /**
   * Enters the namespace behind a handle such as {@code /proc/PID/ns/net} or {@code /run/netns/NAME}.
   *
   * @throws IOException if the handle is gone (the process exited) or entering is not permitted
   */
  public void enter(String handle) throws IOException {
    int fd = openNamespace(handle);
    try {
      libc.setns(fd, LibC.CLONE_NEWNET);
    } catch (LastErrorException e) {
      throw new IOException("cannot enter network namespace " + handle + ": " + reason(e), e);
    } finally {
      libc.close(fd);
    }
  }

  /** Returns the thread to the namespace it started in. */
  @Override
  public void close() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    try {
      libc.setns(home, LibC.CLONE_NEWNET);
    } catch (LastErrorException e) {
      throw new IOException("cannot return to the agent's network namespace: " + reason(e), e);
    } finally {
      libc.close(home);
    }
  }

  private static int openNamespace(String handle) throws IOException {
    try {
      return LibC.INSTANCE.open(handle, LibC.O_RDONLY | LibC.O_CLOEXEC);
    } catch (LastErrorException e) {
      throw new IOException("cannot open " + handle + ": " + reason(e), e);
    }
  }

  private static String reason(LastErrorException e) {
    return switch (e.getErrorCode()) {
      case 1 -> "operation not permitted (needs CAP_SYS_ADMIN)";
      case 2 -> "no such file (the process exited)";
      case 13 -> "permission denied";
      case 22 -> "not a network namespace";
      default -> "errno " + e.getErrorCode();
    };
  }
}
