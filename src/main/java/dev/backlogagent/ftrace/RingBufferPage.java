package dev.backlogagent.ftrace;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Walks one page (sub-buffer) read from a per-CPU {@code trace_pipe_raw}: the header the kernel describes in
 * {@code events/header_page} (a u64 timestamp, then the commit word: the data length in its low 27 bits,
 * bit 31 set when events were lost before this page, bit 30 when their count follows the data), then
 * records with the 4-byte header of {@code events/header_event} ({@code type_len:5, time_delta:27}).
 */
public final class RingBufferPage {
  private static final int TYPE_PADDING = 29;
  private static final int TYPE_TIME_EXTEND = 30;
  private static final int TYPE_TIME_STAMP = 31;
  private static final long COMMIT_MASK = (1L << 27) - 1;
  private static final long MISSED_EVENTS = 1L << 31;
  private static final long MISSED_STORED = 1L << 30;

  /**
   * Receives each data record: {@code page} holds it from {@code offset} for {@code length} bytes;
   * {@code timestamp} is the buffer clock's time of the record (the page's time plus every delta before it).
   */
  public interface RecordSink {
    void record(ByteBuffer page, int offset, int length, long timestamp);
  }

  /** What one page held: its records, and events the kernel lost before it (-1: lost, count unknown). */
  public record Summary(int records, long missed) {}

  private RingBufferPage() {}

  /**
   * Decodes the page in {@code page[0, length)}; {@code dataOffset} is where the data starts (16 on 64-bit
   * kernels: the offset of {@code data} in header_page).
   */
  public static Summary decode(byte[] page, int length, int dataOffset, RecordSink sink) {
    ByteBuffer b = ByteBuffer.wrap(page, 0, length).order(ByteOrder.LITTLE_ENDIAN);
    if (length < dataOffset) {
      return new Summary(0, 0);
    }
    long commit = dataOffset >= 16 ? b.getLong(8) : Integer.toUnsignedLong(b.getInt(8));
    int size = (int) (commit & COMMIT_MASK);
    int end = Math.min(length, dataOffset + size);
    long missed = 0;
    if ((commit & MISSED_EVENTS) != 0) {
      missed = -1;
      if ((commit & MISSED_STORED) != 0 && end + 8 <= length) {
        missed = b.getLong(end);
      }
    }
    int records = 0;
    long time = b.getLong(0);
    int at = dataOffset;
    while (at + 4 <= end) {
      int header = b.getInt(at);
      int typeLen = header & 0x1f;
      int timeDelta = header >>> 5;
      int data = at + 4;
      int next;
      if (typeLen == TYPE_PADDING) {
        if (timeDelta == 0) {
          break; // the rest of the page is empty
        }
        if (data + 4 > end) {
          break;
        }
        next = data + b.getInt(data);
      } else if (typeLen == TYPE_TIME_EXTEND || typeLen == TYPE_TIME_STAMP) {
        if (data + 4 > end) {
          break;
        }
        long extended = (Integer.toUnsignedLong(b.getInt(data)) << 27) | timeDelta;
        time = typeLen == TYPE_TIME_EXTEND ? time + extended : extended;
        next = data + 4;
      } else if (typeLen == 0) {
        if (data + 4 > end) {
          break;
        }
        int recordLength = b.getInt(data) - 4;
        data += 4;
        next = data + ((recordLength + 3) & ~3);
        time += timeDelta;
        if (recordLength > 0 && data + recordLength <= end) {
          sink.record(b, data, recordLength, time);
          records++;
        }
      } else {
        int recordLength = typeLen * 4;
        next = data + recordLength;
        time += timeDelta;
        if (next <= end) {
          sink.record(b, data, recordLength, time);
          records++;
        }
      }
      if (next <= at) {
        break; // a corrupt length: never loop
      }
      at = next;
    }
    return new Summary(records, missed);
  }
}
