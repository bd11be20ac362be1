package dev.backlogagent.bpf;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Splits a child's output into lines without ever holding more than {@code maxLineBytes} of one line: a
 * longer line is read to its end and dropped as it streams, and only its length is reported. A child can
 * print anything (a 32 MiB line, a map with 200,000 keys); the agent's heap is 96 MB and shared by several
 * readers, so what a reader holds must not depend on what the child prints.
 */
public final class ChildLines {
  /**
   * The longest line kept: 1 MiB. bpftrace's longest legitimate line is a map print, and every map of
   * a child the agent starts is bounded to 16384 keys (BPFTRACE_MAP_KEYS_MAX), about 40 bytes a key in
   * our programs: some 650 KB.
   */
  public static final int MAX_LINE_BYTES = 1 << 20;

  /** Where the lines go. */
  public interface Sink {
    void line(String line);

    /** A line longer than the limit was dropped; {@code bytes} is how long it was (without its newline). */
    void overlong(long bytes);
  }

  private final int maxLineBytes;

  public ChildLines(int maxLineBytes) {
    this.maxLineBytes = maxLineBytes;
  }

  /** Reads {@code in} to its end; decodes each kept line as UTF-8 (malformed bytes become U+FFFD). */
  public void drain(InputStream in, Sink sink) throws IOException {
    byte[] chunk = new byte[8192];
    byte[] line = new byte[Math.min(8192, maxLineBytes)];
    int length = 0;
    long dropped = -1; // >= 0 while inside an over-long line: how many bytes it had so far
    int n;
    while ((n = in.read(chunk)) != -1) {
      int start = 0;
      for (int i = 0; i < n; i++) {
        if (chunk[i] != '\n') {
          continue;
        }
        if (dropped >= 0) {
          sink.overlong(dropped + (i - start));
          dropped = -1;
        } else {
          int part = i - start;
          if ((long) length + part > maxLineBytes) {
            sink.overlong((long) length + part);
          } else {
            line = append(line, length, chunk, start, part);
            length += part;
            sink.line(text(line, length));
            if (line.length > 65536) {
              line = new byte[Math.min(8192, maxLineBytes)]; // one big map print must not keep its buffer
            }
          }
        }
        length = 0;
        start = i + 1;
      }
      int rest = n - start;
      if (dropped >= 0) {
        dropped += rest;
      } else if ((long) length + rest > maxLineBytes) {
        dropped = (long) length + rest;
        length = 0;
        line = new byte[Math.min(8192, maxLineBytes)]; // give the big buffer back
      } else {
        line = append(line, length, chunk, start, rest);
        length += rest;
      }
    }
    if (dropped >= 0) {
      sink.overlong(dropped);
    } else if (length > 0) {
      sink.line(text(line, length)); // a last line without a newline
    }
  }

  private static byte[] append(byte[] line, int length, byte[] chunk, int from, int count) {
    if (length + count > line.length) {
      line = Arrays.copyOf(line, Math.max(length + count, Math.min(line.length * 2, Integer.MAX_VALUE - 8)));
    }
    System.arraycopy(chunk, from, line, length, count);
    return line;
  }

  private static String text(byte[] line, int length) {
    int end = length > 0 && line[length - 1] == '\r' ? length - 1 : length;
    return new String(line, 0, end, StandardCharsets.UTF_8);
  }
}
