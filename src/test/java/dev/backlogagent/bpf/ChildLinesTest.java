package dev.backlogagent.bpf;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Line splitting of a child's output, with a bound on what one line may hold. */
class ChildLinesTest {
  private final List<String> lines = new ArrayList<>();
  private final List<Long> overlong = new ArrayList<>();

  private void drain(int limit, InputStream in) throws Exception {
    new ChildLines(limit).drain(in, new ChildLines.Sink() {
      @Override
      public void line(String line) {
        lines.add(line);
      }

      @Override
      public void overlong(long bytes) {
        overlong.add(bytes);
      }
    });
  }

  @Test
  void linesUpToTheLimitArriveWholeAndLongerOnesOnlyAsTheirLength() throws Exception {
    String text = "a\n" + "x".repeat(10) + "\n" + "y".repeat(11) + "\nb\r\n\nlast";
    drain(10, new ByteArrayInputStream(text.getBytes(StandardCharsets.UTF_8)));
    assertThat(lines).containsExactly("a", "x".repeat(10), "b", "", "last");
    assertThat(overlong).containsExactly(11L);
  }

  @Test
  void aThirtyTwoMebibyteLineStreamsThroughWithoutBeingHeld() throws Exception {
    long size = 32L << 20;
    // A stream that produces the line as it is read: nothing holds 32 MiB but the reader, if it buffers.
    InputStream huge = new InputStream() {
      long left = size;
      boolean tail;

      @Override
      public int read() {
        throw new UnsupportedOperationException();
      }

      @Override
      public int read(byte[] b, int off, int len) {
        if (left > 0) {
          int n = (int) Math.min(len, left);
          java.util.Arrays.fill(b, off, off + n, (byte) 'x');
          left -= n;
          return n;
        }
        if (!tail) {
          tail = true;
          byte[] rest = "\n{\"ok\":1}\n".getBytes(StandardCharsets.UTF_8);
          System.arraycopy(rest, 0, b, off, rest.length);
          return rest.length;
        }
        return -1;
      }
    };
    drain(ChildLines.MAX_LINE_BYTES, huge);
    assertThat(overlong).containsExactly(size);
    assertThat(lines).containsExactly("{\"ok\":1}");
  }

  @Test
  void aLineSplitAcrossReadsIsJoinedAndBadUtf8DoesNotStopTheReader() throws Exception {
    byte[] bytes = {'a', 'b', (byte) 0xff, '\n', 'c', '\n'};
    InputStream oneByteAtATime = new InputStream() {
      int i;

      @Override
      public int read() {
        return i < bytes.length ? bytes[i++] & 0xff : -1;
      }

      @Override
      public int read(byte[] b, int off, int len) {
        int c = read();
        if (c < 0) {
          return -1;
        }
        b[off] = (byte) c;
        return 1;
      }
    };
    drain(100, oneByteAtATime);
    assertThat(lines).containsExactly("ab\uFFFD", "c");
    assertThat(overlong).isEmpty();
  }
}
