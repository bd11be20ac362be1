package dev.backlogagent.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.backlogagent.bpf.ConcernStatus;
import dev.backlogagent.bpf.ProgramChoice;
import dev.backlogagent.bpf.TracepointFormats;
import dev.backlogagent.bpf.Tracing;
import dev.backlogagent.kernel.Capability;
import dev.backlogagent.bcc.LibbpfToolsTier;
import dev.backlogagent.ftrace.FtraceTier;
import dev.backlogagent.kernel.HostCapabilities;
import dev.backlogagent.kernel.Tier;
import dev.backlogagent.watch.ListenerWatch;
import dev.backlogagent.bpf.Concern;
import dev.backlogagent.kernel.KernelProbe;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.time.Duration;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** Prints what {@link KernelProbe} found on this host and the tier the agent would run. */
@Command(
    footer = "%nReference: docs/doctor.md in the source tree.",
    name = "doctor",
    mixinStandardHelpOptions = true,
    description =
        "Tells what this host's kernel lets the agent observe, found by trying: BTF, tracefs, which BPF attach"
            + " kinds work (tracepoint, kprobe, fentry), bpftrace, libbpf-tools, capabilities and the listen"
            + " sysctls, then the tier the agent would run and why. Exit 0 when the agent can observe something,"
            + " 1 when it cannot.")
final class DoctorCommand implements Callable<Integer> {

  @Option(names = "--json", description = "Print one JSON document (fields in docs/doctor.md) instead of the table.")
  boolean json;

  @Mixin ProgramOptions options;

  @Option(names = "--states", description = "Also try the state-transition program (the daemon runs it by default).")
  boolean states;

  @Spec CommandSpec spec;

  @Override
  public Integer call() throws Exception {
    options.validate();
    HostCapabilities host = KernelProbe.builder().bpftrace(options.bpftrace).btf(options.btf).everyRung(true).build().probe();
    List<ConcernStatus> concerns = tryConcerns(host);
    PrintWriter out = spec.commandLine().getOut();
    if (json) {
      ObjectMapper mapper = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
      ObjectNode document = mapper.valueToTree(host);
      document.set("concerns", mapper.valueToTree(concerns));
      out.println(mapper.writeValueAsString(document));
    } else {
      printTable(out, host, concerns);
    }
    out.flush();
    return host.tier().canObserve() ? ExitCode.OK : ExitCode.FAILURE;
  }

  /**
   * Starts the tier's program for each concern, as the daemon would (the variant this kernel's tracepoints
   * fit), waits until they attach or fail, and stops them: what runs is proven by attaching, not guessed.
   */
  private List<ConcernStatus> tryConcerns(HostCapabilities host) throws IOException, InterruptedException {
    if (host.tier() == Tier.FTRACE) {
      return tryFtrace();
    }
    if (host.tier() == Tier.LIBBPF_TOOLS) {
      List<Concern> runs = new ArrayList<>();
      List<Tracing.Failure> failures = new ArrayList<>();
      for (HostCapabilities.ToolAttach t : host.libbpfToolsAttach()) {
        Concern c = t.tool().equals("solisten") ? Concern.LISTEN : t.tool().equals("tcpstates") ? Concern.HANDSHAKES : null;
        if (c != null && t.works()) {
          runs.add(c);
        } else if (c != null) {
          failures.add(new Tracing.Failure(c, t.tool() + ": " + t.detail()));
        }
      }
      boolean queueDepth = host.libbpfToolsAttach().stream().anyMatch(t -> t.tool().equals("tcpsynbl") && t.works());
      return ListenerWatch.lowerRungConcerns(Tier.LIBBPF_TOOLS, runs, failures, states,
          c -> LibbpfToolsTier.lost(c, queueDepth));
    }
    boolean fentry = host.attach().fentry().works();
    List<ProgramChoice> choices = ProgramChoice.choose(host.tier(), fentry, states, TracepointFormats.ofThisKernel());
    if (choices.stream().noneMatch(ProgramChoice::runs)) {
      return Tracing.start(choices, options.programs, null, r -> {}).concerns();
    }
    Path work = Files.createTempDirectory("backlog-agent-doctor-");
    Path binary = options.bpftrace != null ? options.bpftrace : Path.of(host.bpftrace().path());
    Tracing.Launch launch = Tracing.Launch.fitting(binary, List.of("1", "100"), work,
        options.attachTimeout(), host.attach().tracepoint().millis(), host.btf().bpftraceEnvironment());
    try (Tracing tried = Tracing.start(choices, options.programs, launch, r -> {})) {
      return tried.concerns();
    } finally {
      try (var files = Files.list(work)) {
        for (Path f : files.toList()) {
          Files.deleteIfExists(f);
        }
      }
      Files.deleteIfExists(work);
    }
  }

  // The ftrace tier's events enabled for a moment in an instance of its own: what runs is proven by enabling.
  private List<ConcernStatus> tryFtrace() {
    List<Tracing.Failure> failures = new ArrayList<>();
    try (FtraceTier tried = FtraceTier.start(FtraceTier.Settings.of(Duration.ofSeconds(1), null), e -> {}, () -> null)) {
      tried.failures().forEach(f -> failures.add(new Tracing.Failure(f.concern(), "ftrace: " + f.reason())));
      return ListenerWatch.lowerRungConcerns(Tier.FTRACE, tried.running(), failures, states, tried::lostHere);
    } catch (IOException e) {
      for (Concern c : List.of(Concern.LISTEN, Concern.HANDSHAKES, Concern.SYNACK, Concern.DROPS, Concern.RESETS)) {
        failures.add(new Tracing.Failure(c, "ftrace: " + e.getMessage()));
      }
      return ListenerWatch.lowerRungConcerns(Tier.FTRACE, List.of(), failures, states, FtraceTier::lost);
    }
  }

  private static void printTable(PrintWriter out, HostCapabilities host, List<ConcernStatus> concerns) {
    List<String[]> rows = new ArrayList<>();
    rows.add(row("kernel", host.kernelRelease(), ""));
    HostCapabilities.Btf btf = host.btf();
    rows.add(row("btf", yesNo(btf.available()), btf.path() + " " + btf.detail() + (btf.cost() == null ? "" : "; " + btf.cost())));
    rows.add(row("tracefs", yesNo(host.tracefs().mounted()), host.tracefs().detail()));
    HostCapabilities.BpftraceBinary bpftrace = host.bpftrace();
    rows.add(row("bpftrace", yesNo(bpftrace.found()),
        bpftrace.found() ? bpftrace.path() + ", " + bpftrace.detail() : bpftrace.detail()));
    attachRow(rows, "attach tracepoint", host.attach().tracepoint());
    attachRow(rows, "attach kprobe", host.attach().kprobe());
    attachRow(rows, "attach fentry", host.attach().fentry());
    HostCapabilities.LibbpfTools tools = host.libbpfTools();
    rows.add(row("libbpf-tools", yesNo(tools.found()),
        tools.found()
            ? tools.path() + ", " + tools.detail() + (tools.versionSource() == null ? "" : " (" + tools.versionSource() + ")")
            : tools.detail()));
    if (host.libbpfToolsAttach() != null) {
      for (HostCapabilities.ToolAttach t : host.libbpfToolsAttach()) {
        rows.add(row("attach " + t.tool(), t.works() ? "works" : "fails",
            t.detail() + (t.millis() > 0 ? " (" + t.millis() + " ms)" : "")));
      }
    }
    if (host.ftrace() != null) {
      rows.add(row("ftrace instance", host.ftrace().works() ? "works" : "fails", host.ftrace().detail()
          + (host.ftrace().millis() > 0 ? " (" + host.ftrace().millis() + " ms)" : "")));
    }
    HostCapabilities.Capabilities caps = host.capabilities();
    if (caps.detail() != null) {
      rows.add(row("capabilities", "unknown", caps.detail()));
    }
    for (Map.Entry<Capability, String> needed : Capability.NEEDED.entrySet()) {
      String name = needed.getKey().name();
      String result =
          caps.unknownToKernel().contains(name) ? "n/a" : caps.missing().contains(name) ? "missing" : "yes";
      String detail =
          result.equals("n/a") ? needed.getValue() + "; not known to this kernel, CAP_SYS_ADMIN stands in" : needed.getValue();
      rows.add(row(name, result, detail));
    }
    for (Map.Entry<Capability, String> optional : Capability.OPTIONAL.entrySet()) {
      String name = optional.getKey().name();
      boolean absent = caps.optionalMissing() != null && caps.optionalMissing().contains(name);
      rows.add(row(name, absent ? "absent" : "yes", "optional: " + optional.getValue()));
    }
    HostCapabilities.Sysctls sysctls = host.sysctls();
    rows.add(sysctlRow("net.core.somaxconn", sysctls.somaxconn(), sysctls));
    rows.add(sysctlRow("net.ipv4.tcp_max_syn_backlog", sysctls.tcpMaxSynBacklog(), sysctls));
    rows.add(sysctlRow("net.ipv4.tcp_syncookies", sysctls.tcpSyncookies(), sysctls));
    rows.add(sysctlRow("net.ipv4.tcp_abort_on_overflow", sysctls.tcpAbortOnOverflow(), sysctls));
    rows.add(row("/proc/net/netstat", yesNo(host.procNetstat().readable()), host.procNetstat().detail()));
    rows.add(row("probe time", host.probeMillis() + " ms", ""));

    int checkWidth = rows.stream().mapToInt(r -> r[0].length()).max().orElse(0);
    // Rows without a detail (kernel release, probe time) may run into the detail column: they do not set its start.
    int resultWidth = rows.stream().filter(r -> !r[2].isEmpty()).mapToInt(r -> r[1].length()).max().orElse(0);
    for (String[] r : rows) {
      String line = String.format("%-" + checkWidth + "s  %-" + resultWidth + "s  %s", r[0], r[1], r[2]);
      out.println(line.stripTrailing());
    }
    if (host.ladder() != null) {
      int width = host.ladder().stream().mapToInt(r -> r.rung().length()).max().orElse(0);
      out.println("ladder (first rung that works is chosen):");
      for (HostCapabilities.Rung r : host.ladder()) {
        String mark = r.chosen() ? "chosen" : r.works() ? "works" : "no";
        out.println(String.format("  %-" + width + "s  %-6s  %s", r.rung(), mark, r.why()).stripTrailing());
      }
    }
    // One line per concern, then the verdict last: what a reader looks for first is at the bottom.
    for (ConcernStatus c : concerns) {
      out.println("concern " + c.line());
    }
    out.println("tier: " + host.tier().label() + " \u2014 " + host.tierReason());
  }

  private static void attachRow(List<String[]> rows, String check, HostCapabilities.AttachResult result) {
    String detail = result.probe() + ": " + result.detail() + (result.millis() > 0 ? " (" + result.millis() + " ms)" : "");
    rows.add(row(check, result.works() ? "works" : "fails", detail));
  }

  private static String[] sysctlRow(String name, Long value, HostCapabilities.Sysctls sysctls) {
    if (value == null) {
      return row(name, "unknown", sysctls.unreadable().getOrDefault(name, "cannot read it"));
    }
    return row(name, value.toString(), sysctlMeaning(name, value));
  }

  private static String sysctlMeaning(String name, long value) {
    return switch (name) {
      case "net.core.somaxconn" -> "caps every listen() backlog in this network namespace";
      case "net.ipv4.tcp_max_syn_backlog" -> "bounds the half-open connections (SYN queue) of a listener";
      case "net.ipv4.tcp_syncookies" -> value == 0
          ? "off: SYNs beyond a full SYN queue are dropped"
          : value == 1 ? "SYN cookies are sent when a SYN queue overflows" : "SYN cookies are always sent";
      case "net.ipv4.tcp_abort_on_overflow" -> value == 0
          ? "a full accept queue drops the client's third ACK; the client retries"
          : "a full accept queue resets the connection";
      default -> "";
    };
  }

  private static String yesNo(boolean value) {
    return value ? "yes" : "no";
  }

  private static String[] row(String check, String result, String detail) {
    return new String[] {check, result == null ? "" : result, detail == null ? "" : detail};
  }
}
