package dev.backlogagent.cli;

import dev.backlogagent.kernel.Tier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import picocli.CommandLine.Option;

/**
 * How the tracer is chosen and started, shared by trace and watch so that the two accept the same options
 * with the same words (watch once kept an old list of tiers in its help).
 */
final class TracerOptions {
  @Option(names = "--tier", paramLabel = "TIER",
      description = "Force the tier (kprobe, tracepoint, libbpf-tools, ftrace, counters) instead of probing the kernel.")
  String tier;

  @Option(names = "--bpftrace", paramLabel = "PATH", description = "The bpftrace to run (default: search PATH, /usr/sbin, /usr/bin).")
  Path bpftrace;

  @Option(names = "--btf", paramLabel = "FILE",
      description = "Read the kernel's types from this BTF file (for kernels that ship none), instead of the kernel's own.")
  Path btf;

  @Option(names = "--programs", paramLabel = "DIR", description = "Read the bpftrace programs from DIR instead of the jar.")
  Path programs;

  @Option(names = "--attach-timeout", paramLabel = "S", defaultValue = "60",
      description = "Give each BPF program at least S seconds to compile and attach; more on a machine the kernel probe finds slow (default: ${DEFAULT-VALUE}).")
  int attachTimeoutSeconds;

  /** Checks every value; bad input is a one-line error naming the option, exit 2. */
  void validate() {
    if (attachTimeoutSeconds < 1 || attachTimeoutSeconds > 1800) {
      throw new BadInputException("--attach-timeout must be between 1 and 1800 seconds, not " + attachTimeoutSeconds);
    }
    forcedTier();
    if (btf != null && !Files.isReadable(btf)) {
      throw new BadInputException("--btf " + btf + ": not a readable file");
    }
    if (programs != null && !Files.isDirectory(programs)) {
      throw new BadInputException("--programs " + programs + ": not a directory");
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

  Duration attachTimeout() {
    return Duration.ofSeconds(attachTimeoutSeconds);
  }
}
