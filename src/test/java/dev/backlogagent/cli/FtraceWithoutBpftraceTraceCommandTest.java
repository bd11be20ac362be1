package dev.backlogagent.cli;

import java.util.List;

/**
 * The same scenarios where bpftrace is missing: the ladder tries libbpf-tools (solisten needs kprobes, which
 * this kernel lacks) and then ftrace, which it must choose by itself.
 */
class FtraceWithoutBpftraceTraceCommandTest extends FtraceTraceCommandTest {

  @Override
  protected List<String> tierArguments() {
    return List.of("--bpftrace", "/nonexistent");
  }
}
