package dev.backlogagent.ftrace;

import com.sun.jna.LastErrorException;
import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.NativeLong;
import java.io.IOException;
import java.nio.file.Path;

/**
 * One CPU's {@code trace_pipe_raw}, opened non-blocking: a read returns a page or says there is none now, so
 * one thread can poll every CPU and stop at once when asked (a blocking read on tracefs cannot be woken).
 */
final class RawPipe implements AutoCloseable {
  private static final int O_RDONLY = 0;
  private static final int O_NONBLOCK = 0x800;
  private static final int O_CLOEXEC = 0x80000;
  private static final int EAGAIN = 11;
  private static final int EINTR = 4;

  interface Libc extends Library {
    Libc INSTANCE = Native.load("c", Libc.class);

    int open(String path, int flags) throws LastErrorException;

    NativeLong read(int fd, byte[] buffer, NativeLong count) throws LastErrorException;

    int close(int fd) throws LastErrorException;
  }

  private final Path path;
  private final int fd;
  private boolean closed;

  private RawPipe(Path path, int fd) {
    this.path = path;
    this.fd = fd;
  }

  static RawPipe open(Path path) throws IOException {
    try {
      return new RawPipe(path, Libc.INSTANCE.open(path.toString(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    } catch (LastErrorException e) {
      throw new IOException("cannot open " + path + ": errno " + e.getErrorCode(), e);
    }
  }

  /** Reads one page into {@code page}; returns its length, or 0 when the buffer is empty now. */
  int read(byte[] page) throws IOException {
    while (true) {
      try {
        return (int) Libc.INSTANCE.read(fd, page, new NativeLong(page.length)).longValue();
      } catch (LastErrorException e) {
        if (e.getErrorCode() == EAGAIN) {
          return 0;
        }
        if (e.getErrorCode() != EINTR) {
          throw new IOException("cannot read " + path + ": errno " + e.getErrorCode(), e);
        }
      }
    }
  }

  Path path() {
    return path;
  }

  @Override
  public void close() {
    if (!closed) {
      closed = true;
      try {
        Libc.INSTANCE.close(fd);
      } catch (LastErrorException e) {
        // nothing left to do with this descriptor
      }
    }
  }
}
