package dev.backlogagent.kernel;

import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.annotation.JsonNaming;
import java.util.List;
import java.util.Map;

/**
 * What this host let the agent do when {@link KernelProbe} tried, and the tier it would run because of it.
 * Serialized with Jackson, it is the document of {@code backlog-agent doctor --json} (see docs/doctor.md).
 */
@JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
public record HostCapabilities(
    String kernelRelease,
    Btf btf,
    Tracefs tracefs,
    BpftraceBinary bpftrace,
    Attach attach,
    LibbpfTools libbpfTools,
    Capabilities capabilities,
    Sysctls sysctls,
    ProcNetstat procNetstat,
    Tier tier,
    String tierReason,
    long probeMillis,
    List<ToolAttach> libbpfToolsAttach,
    FtraceCheck ftrace,
    List<Rung> ladder) {

  /** One libbpf-tools program started for a moment to see whether it attaches here (e.g. solisten). */
  @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
  public record ToolAttach(String tool, boolean works, String detail, long millis) {}

  /**
   * Whether the ftrace tier can run: a tracefs instance of the agent's own was made, an event enabled in
   * it with a filter, and removed again.
   */
  @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
  public record FtraceCheck(boolean works, String tracefs, String detail, long millis) {}

  /**
   * One rung of the ladder bpftrace, libbpf-tools, ftrace, counters: whether it works here, whether it is
   * the one chosen, and why (or why not).
   */
  @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
  public record Rung(String rung, Tier tier, boolean works, boolean chosen, String why) {}

  /**
   * The kernel's type information (BTF), which bpftrace needs to read {@code struct sock} and to attach fentry;
   * whether bpftrace can use it was tried, not assumed.
   *
   * @param available whether bpftrace reads the kernel's types (or, where bpftrace was not tried, whether the
   *     file is there)
   * @param path the BTF file: the kernel's /sys/kernel/btf/vmlinux, or the one given with --btf or btf:
   * @param source where bpftrace reads it: {@code kernel} (it finds it itself), {@code kernel_file} (its own lookup
   *     fails, so the agent points it at the kernel's file), {@code file} (the given file), {@code none}, or
   *     {@code not_tried} (no bpftrace)
   * @param bpftraceBtf what the agent sets BPFTRACE_BTF to for every bpftrace it runs, or null
   * @param cost what the agent cannot observe without BTF (null when bpftrace reads it)
   */
  @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
  public record Btf(
      boolean available,
      String path,
      long sizeBytes,
      String detail,
      String source,
      @JsonInclude(JsonInclude.Include.NON_NULL) String bpftraceBtf,
      @JsonInclude(JsonInclude.Include.NON_NULL) String cost) {
    /** The variables every bpftrace the agent runs gets: BPFTRACE_BTF when bpftrace must be told, else none. */
    @JsonIgnore
    public Map<String, String> bpftraceEnvironment() {
      return bpftraceBtf == null ? Map.of() : Map.of(Bpftrace.BTF_VARIABLE, bpftraceBtf);
    }

    /** The kernel's file as read, before bpftrace was tried. */
    static Btf file(boolean available, String path, long sizeBytes, String detail) {
      return new Btf(available, path, sizeBytes, detail, "not_tried", null, available ? null : KernelProbe.WITHOUT_BTF);
    }
  }

  /** The tracing filesystem bpftrace finds tracepoints and kprobe events in. */
  @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
  public record Tracefs(boolean mounted, String path, boolean mountedByDoctor, String detail) {}

  /** Where bpftrace is (null path when nowhere) and the version it reports. */
  @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
  public record BpftraceBinary(boolean found, String path, String version, String detail) {
    /** One line for the head of `trace` and `run`: "bpftrace: v0.17.0 (/usr/bin/bpftrace)", or why none. */
    public String line() {
      return "bpftrace: " + (!found ? "none (" + detail + ")" : version != null ? version + " (" + path + ")" : detail);
    }
  }

  /** One BPF attach kind, tried with a tiny bpftrace program that attaches and exits at once. */
  @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
  public record AttachResult(boolean works, String probe, String detail, long millis) {
    static AttachResult notTried(String probe, String why) {
      return new AttachResult(false, probe, "not tried: " + why, 0);
    }
  }

  /** The three attach kinds the agent's programs use. */
  @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
  public record Attach(AttachResult tracepoint, AttachResult kprobe, AttachResult fentry) {}

  /** bcc's prebuilt CO-RE tools (found by tcpstates), an optional second source of events. */
  @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
  public record LibbpfTools(boolean found, String path, String version, String versionSource, String detail) {}

  /**
   * The process's effective capabilities, those the agent needs but lacks, and needed ones this kernel does not
   * know (CAP_BPF and CAP_PERFMON before 5.8, where CAP_SYS_ADMIN stands in for them).
   */
  @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
  public record Capabilities(
      String effectiveHex,
      List<String> effective,
      List<String> missing,
      @JsonInclude(JsonInclude.Include.NON_EMPTY) List<String> unknownToKernel,
      @JsonInclude(JsonInclude.Include.NON_NULL) String detail,
      @JsonInclude(JsonInclude.Include.NON_EMPTY) List<String> optionalMissing) {}

  /** The sysctls of the agent's own network namespace that bound listen backlogs and SYN handling. */
  @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
  public record Sysctls(
      Long somaxconn,
      Long tcpMaxSynBacklog,
      Long tcpSyncookies,
      Long tcpAbortOnOverflow,
      @JsonInclude(JsonInclude.Include.NON_EMPTY) Map<String, String> unreadable) {}

  /** Whether the TcpExt counters (ListenOverflows, ListenDrops, ...) can be read: the floor of observation. */
  @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
  public record ProcNetstat(boolean readable, String detail) {}
}
