package dev.backlogagent.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import picocli.CommandLine.Option;

/**
 * Which bpftrace runs which programs, and how long they may take to attach: shared by every command that starts
 * the BPF programs (doctor tries them; trace and watch run them), so that the options and their checks are one.
 */
class ProgramOptions {
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

  /** Checks the values every command refuses alike; bad input is a one-line error naming the option, exit 2. */
  void validate() {
    if (attachTimeoutSeconds < 1 || attachTimeoutSeconds > 1800) {
      throw new BadInputException("--attach-timeout must be between 1 and 1800 seconds, not " + attachTimeoutSeconds);
    }
    if (programs != null && !Files.isDirectory(programs)) {
      throw new BadInputException("--programs " + programs + ": not a directory");
    }
  }

  Duration attachTimeout() {
    return Duration.ofSeconds(attachTimeoutSeconds);
  }
}
