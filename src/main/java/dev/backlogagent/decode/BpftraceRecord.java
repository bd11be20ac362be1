package dev.backlogagent.decode;

import java.util.List;
import java.util.Map;

/** One line of {@code bpftrace -f json} output, by its "type". */
public sealed interface BpftraceRecord {

  /** {@code attached_probes}: every probe of the program is attached; the program is running. */
  record Attached(int probes) implements BpftraceRecord {}

  /** {@code printf}: the text a program printed (our programs print one JSON object per line). */
  record Printed(String text) implements BpftraceRecord {}

  /**
   * {@code map}: a map printed with print(); keys are the map key's fields in order ("a,b" split on
   * commas — our programs keep commas out of keys), empty for a scalar map.
   */
  record MapDump(String map, Map<List<String>, Long> values) implements BpftraceRecord {}

  /** {@code hist}: a hist() or lhist() map; each key has its non-empty buckets. */
  record HistDump(String map, Map<List<String>, List<Bucket>> buckets) implements BpftraceRecord {}

  /** {@code lost_events}: the perf buffer overflowed and this many events were lost in the kernel. */
  record LostEvents(long count) implements BpftraceRecord {}

  /**
   * {@code helper_error}: a BPF helper a program called failed at run time (bpftrace 0.23 reports a failed
   * map_update_elem with "File exists", most likely inserting a key another CPU had just created): what it was
   * counting is lost.
   * Fields bpftrace did not print are null, or -1 for the numbers.
   */
  record HelperError(String helper, String message, long returnCode, long line, long column) implements BpftraceRecord {}

  /** Any other type bpftrace prints (time, join, syscall, …) that our programs do not use. */
  record Other(String type) implements BpftraceRecord {}

  /** A histogram bucket holding values in [min, max]. */
  record Bucket(long min, long max, long count) {}
}
