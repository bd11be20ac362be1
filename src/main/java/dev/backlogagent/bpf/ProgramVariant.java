package dev.backlogagent.bpf;

import dev.backlogagent.kernel.Tier;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One program that can serve a concern, and what it needs from the kernel: the tiers it belongs to, whether
 * it needs fentry, and the tracepoint fields it reads. A concern's variants are listed in the order the
 * agent prefers them; a variant other than the first says what it loses.
 *
 * @param file the program's path relative to bpf/
 * @param tiers the tiers that run it
 * @param fentry whether it attaches fentry/fexit probes
 * @param fields per tracepoint ("skb:kfree_skb"), the fields it reads from {@code args}
 * @param lost what this variant cannot tell that the first one can, in one line; empty when nothing
 */
public record ProgramVariant(String file, Set<Tier> tiers, boolean fentry, Map<String, List<String>> fields, String lost) {

  static final Set<Tier> BOTH_TIERS = Set.of(Tier.TRACEPOINT, Tier.KPROBE);

  public ProgramVariant {
    tiers = Set.copyOf(tiers);
    fields = Map.copyOf(fields);
    lost = lost == null ? "" : lost;
  }

  /** A program of both BPF tiers reading these tracepoint fields. */
  static ProgramVariant tracepoints(String file, Map<String, List<String>> fields, String lost) {
    return new ProgramVariant(file, BOTH_TIERS, false, fields, lost);
  }

  /** The file name alone, e.g. "drops-no-rx-sk.bt". */
  public String name() {
    return file.substring(file.lastIndexOf('/') + 1);
  }

  /**
   * Why this variant cannot run on a kernel with these tracepoint formats, or null when it fits. Only
   * what the formats tell; whether it compiles and attaches is for bpftrace to say.
   */
  String misfit(TracepointFormats formats) {
    if (!formats.readable()) {
      return null; // cannot tell: let the attach decide
    }
    for (Map.Entry<String, List<String>> need : fields.entrySet()) {
      var present = formats.fields(need.getKey());
      if (present.isEmpty()) {
        return "this kernel has no tracepoint " + need.getKey();
      }
      List<String> missing = need.getValue().stream().filter(f -> !present.get().contains(f)).toList();
      if (!missing.isEmpty()) {
        return "tracepoint " + need.getKey() + " has no field " + String.join(", ", missing);
      }
    }
    return null;
  }
}
