package dev.backlogagent.cli;

import dev.backlogagent.kernel.Tier;
import java.nio.file.Files;
import picocli.CommandLine.Option;

/**
 * How the tracer is chosen and started: the program options doctor takes too, and --tier. Shared by trace and
 * watch so that the two accept the same options with the same words (watch once kept an old list of tiers in its
 * help).
 */
final class TracerOptions extends ProgramOptions {
  @Option(names = "--tier", paramLabel = "TIER",
      description = "Force the tier (kprobe, tracepoint, libbpf-tools, ftrace, counters) instead of probing the kernel.")
  String tier;

  /** Checks every value; bad input is a one-line error naming the option, exit 2. */
  @Override
  void validate() {
    super.validate();
    forcedTier();
    // Doctor reports an unreadable BTF file in its btf row instead; a tracer cannot start without it.
    if (btf != null && !Files.isReadable(btf)) {
      throw new BadInputException("--btf " + btf + ": not a readable file");
    }
  }

  /** The tier --tier forces, or null to probe the kernel. */
  Tier forcedTier() {
    if (tier == null) {
      return null;
    }
    try {
      Tier t = Tier.parse(tier);
      if (t == Tier.NONE) {
        throw new IllegalArgumentException("tier 'none' observes nothing; expected kprobe, tracepoint, libbpf-tools, ftrace or counters");
      }
      return t;
    } catch (IllegalArgumentException e) {
      throw new BadInputException("--tier: " + e.getMessage());
    }
  }
}
