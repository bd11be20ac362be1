package dev.backlogagent.kernel;

import dev.backlogagent.config.ConfigException;
import dev.backlogagent.config.FileTrust;
import dev.backlogagent.procfs.NamespaceSysctls;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import java.util.regex.Pattern;

/**
 * Finds out what this host lets the agent observe by trying it: reads what the kernel exposes, mounts tracefs
 * when it is absent and allowed, and runs tiny bpftrace programs that attach one probe each and exit at once.
 * It never throws: every check that fails carries its reason in one line.
 */
public final class KernelProbe {

  /** How long each bpftrace attach attempt may take before it is killed and counted as failed. */
  public static final Duration DEFAULT_ATTACH_TIMEOUT = Duration.ofSeconds(15);

  static final String TRACEPOINT_PROBE = "tracepoint:sock:inet_sock_set_state";
  static final String KPROBE_PROBE = "kprobe:tcp_v4_syn_recv_sock";
  // bpftrace 0.17 spells fentry "kfunc" and aborts on "fentry"; later ones take both, "kfunc" as a deprecated alias.
  static final String KFUNC_PROBE = "kfunc:inet_csk_accept";
  static final String FENTRY_PROBE = "fentry:inet_csk_accept";
  /** What the attach programs' BEGIN prints; only a run that printed it attached. */
  static final String ATTACHED_MARK = "backlog-agent: attached";
  private static final Pattern PROBE_TYPE_NOT_UNDERSTOOD =
      Pattern.compile("(?i)probe type|invalid provider|kfunc.*(removed|no longer)");

  private static final Path TRACING = Path.of("/sys/kernel/tracing");
  private static final Path DEBUG_TRACING = Path.of("/sys/kernel/debug/tracing");
  private static final Path BTF_VMLINUX = Path.of("/sys/kernel/btf/vmlinux");
  private static final Path PROC_NETSTAT = Path.of("/proc/net/netstat");
  private static final Duration COMMAND_TIMEOUT = Duration.ofSeconds(5);

  /** What doctor says the agent loses without BTF: every program that reads a socket, and fentry. */
  static final String WITHOUT_BTF =
      "without BTF bpftrace cannot read struct sock nor attach fentry: listen, handshakes, synack, drops, resets,"
          + " acceptwait and the kprobe tier cannot run; left are state counts (states.bt) and the counters tier"
          + " (ListenOverflows, ListenDrops per namespace; queue, backlog and drops per listener from sock_diag)."
          + " Give a BTF file of this kernel with --btf FILE or btf: in the configuration (BTFHub has them for many"
          + " distribution kernels; objcopy -O binary --only-section=.BTF vmlinux makes one from the kernel's image)";
  // A program that needs the kernel's types and nothing else: it runs BEGIN only, so it works on any kernel
  // bpftrace runs on, and fails with "Unknown struct/union: 'struct sock'" when bpftrace finds no BTF.
  static final String TYPE_PROGRAM = "BEGIN { printf(\"%d\\n\", sizeof(struct sock)); exit(); }";
  // Reading a kernel's whole BTF takes bpftrace 12-20 s in an emulated guest, 1 s on a host; only a hang waits this long.
  private static final Duration TYPE_TRIAL_TIMEOUT = Duration.ofSeconds(90);
  private static final Pattern NO_TYPES = Pattern.compile("(?i)unknown struct|btf|struct sock");

  private final Path bpftraceOverride;
  private final Path btfFile;
  private final Duration attachTimeout;
  private final boolean mountTracefs;
  private final boolean everyRung;
  private final FileTrust trust;

  private KernelProbe(Builder builder) {
    this.trust = builder.trust == null ? FileTrust.forThisProcess() : builder.trust;
    this.bpftraceOverride = builder.bpftrace;
    this.btfFile = builder.btf;
    this.attachTimeout = builder.attachTimeout;
    this.mountTracefs = builder.mountTracefs;
    this.everyRung = builder.everyRung;
  }

  /** A probe that searches for bpftrace and mounts tracefs when it can. */
  public static KernelProbe create() {
    return builder().build();
  }

  public static Builder builder() {
    return new Builder();
  }

  /** Options of a {@link KernelProbe}. */
  public static final class Builder {
    private Path bpftrace;
    private Path btf;
    private Duration attachTimeout = DEFAULT_ATTACH_TIMEOUT;
    private boolean mountTracefs = true;
    private boolean everyRung;
    private FileTrust trust;

    private Builder() {}

    /** Try every rung of the ladder (doctor), not only down to the first that works (the agent's start). */
    public Builder everyRung(boolean every) {
      this.everyRung = every;
      return this;
    }

    /** Who may own and write the bpftrace the probe runs (default: as this process is root or not). */
    public Builder trust(FileTrust trust) {
      this.trust = trust;
      return this;
    }

    /** Use this bpftrace instead of searching PATH, /usr/sbin and /usr/bin; null searches. */
    public Builder bpftrace(Path path) {
      this.bpftrace = path;
      return this;
    }

    /**
     * Read the kernel's types from this BTF file (a kernel that ships none: BTFHub's files, or the .BTF section
     * of its vmlinux) instead of wherever bpftrace looks; null: the kernel's own, found by trying.
     */
    public Builder btf(Path file) {
      this.btf = file;
      return this;
    }

    public Builder attachTimeout(Duration timeout) {
      this.attachTimeout = timeout;
      return this;
    }

    /** Whether to mount tracefs at /sys/kernel/tracing when it is absent (needs CAP_SYS_ADMIN). */
    public Builder mountTracefs(boolean mount) {
      this.mountTracefs = mount;
      return this;
    }

    public KernelProbe build() {
      return new KernelProbe(this);
    }
  }

  /** Tries everything and returns what worked, with the tier the agent would run. */
  public HostCapabilities probe() {
    long start = System.nanoTime();
    String kernelRelease = readFirstLine(Path.of("/proc/sys/kernel/osrelease")).orElse(System.getProperty("os.version"));
    HostCapabilities.Capabilities capabilities = capabilities();
    HostCapabilities.Btf btf = btf();
    // Before any bpftrace run: without tracefs no tracepoint can be found.
    HostCapabilities.Tracefs tracefs = tracefs(capabilities);
    HostCapabilities.ProcNetstat netstat = procNetstat();
    HostCapabilities.Sysctls sysctls = sysctls();

    Optional<Path> bpftracePath = locateBpftrace();
    String refused = null;
    if (bpftracePath.isPresent()) {
      try {
        trust.checkExecutable(bpftracePath.get(), "bpftrace executable");
      } catch (ConfigException e) {
        refused = e.getMessage(); // root must not run what others can replace: not even to probe
      }
    }
    ExecutorService pool = Executors.newFixedThreadPool(5, namedThreads());
    try {
      Future<HostCapabilities.LibbpfTools> libbpfTools = pool.submit(this::libbpfTools);
      HostCapabilities.BpftraceBinary binary;
      HostCapabilities.Attach attach;
      if (bpftracePath.isEmpty() || refused != null) {
        binary = refused != null
            ? new HostCapabilities.BpftraceBinary(false, bpftracePath.get().toString(), null, "not run: " + refused)
            : new HostCapabilities.BpftraceBinary(false, pathText(bpftraceOverride), null, bpftraceMissingDetail());
        String why = refused != null ? "bpftrace not trusted" : "no bpftrace";
        attach =
            new HostCapabilities.Attach(
                HostCapabilities.AttachResult.notTried(TRACEPOINT_PROBE, why),
                HostCapabilities.AttachResult.notTried(KPROBE_PROBE, why),
                HostCapabilities.AttachResult.notTried(KFUNC_PROBE, why));
        if (btfFile != null) {
          btf = givenBtfFile(btfFile, "not tried: no bpftrace");
        }
      } else {
        // Before the attach trials: fentry needs the types too, so they run with what this finds.
        btf = btfForBpftrace(new Bpftrace(bpftracePath.get()), btf);
        Bpftrace bpftrace = new Bpftrace(bpftracePath.get()).withBtf(btf.bpftraceBtf());
        Future<HostCapabilities.BpftraceBinary> version = pool.submit(() -> bpftraceVersion(bpftrace));
        Future<HostCapabilities.AttachResult> tracepoint =
            pool.submit(() -> attach(bpftrace, "tracepoint", TRACEPOINT_PROBE));
        Future<HostCapabilities.AttachResult> kprobe = pool.submit(() -> attach(bpftrace, "kprobe", KPROBE_PROBE));
        Future<HostCapabilities.AttachResult> fentry = pool.submit(() -> fentry(bpftrace));
        binary =
            await(version, () -> new HostCapabilities.BpftraceBinary(true, bpftrace.executable().toString(), null,
                "bpftrace --version did not finish"));
        attach =
            new HostCapabilities.Attach(
                await(tracepoint, () -> HostCapabilities.AttachResult.notTried(TRACEPOINT_PROBE, "did not finish")),
                await(kprobe, () -> HostCapabilities.AttachResult.notTried(KPROBE_PROBE, "did not finish")),
                await(fentry, () -> HostCapabilities.AttachResult.notTried(KFUNC_PROBE, "did not finish")));
      }
      HostCapabilities.LibbpfTools tools =
          await(libbpfTools, () -> new HostCapabilities.LibbpfTools(false, null, null, null, "check did not finish"));
      TierChoice bpftraceRung = TierChoice.decide(netstat, binary, attach, capabilities);
      boolean climb = everyRung || !bpftraceRung.tier().runsBpftrace();
      // Starting the tools costs seconds (each loads its CO-RE object): only when bpftrace does not run. The
      // ftrace check takes milliseconds: doctor always shows it.
      Future<List<HostCapabilities.ToolAttach>> toolAttach = !bpftraceRung.tier().runsBpftrace() && tools.found()
          ? pool.submit(() -> LibbpfToolsProbe.tryAll(attachTimeout)) : null;
      HostCapabilities.FtraceCheck ftrace = climb ? FtraceProbe.check() : null;
      List<HostCapabilities.ToolAttach> attached = toolAttach == null ? null
          : await(toolAttach, () -> List.of(new HostCapabilities.ToolAttach("solisten", false, "did not finish", 0)));
      boolean toolsWork = attached != null && TierChoice.LIBBPF_TOOLS_NEEDED.stream()
          .allMatch(t -> attached.stream().anyMatch(a -> a.tool().equals(t) && a.works()));
      if (!everyRung && toolsWork) {
        ftrace = null; // a rung above works: only doctor lists what the lower ones would do
      }
      TierChoice.Ladder ladder = TierChoice.climb(netstat, bpftraceRung, tools, attached, ftrace);
      TierChoice choice = ladder.choice();
      long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
      return new HostCapabilities(kernelRelease, btf, tracefs, binary, attach, tools, capabilities, sysctls, netstat,
          choice.tier(), choice.reason(), millis, attached, ftrace, ladder.rungs());
    } finally {
      pool.shutdownNow();
    }
  }

  // ---- parsers, on text so that they can be tested on recordings ----

  /** Where tracefs is mounted among the two places bpftrace looks, from the text of /proc/self/mounts. */
  static Optional<String> tracefsMountPoint(String procMounts) {
    List<String> found = new ArrayList<>();
    for (String line : procMounts.lines().toList()) {
      String[] fields = line.split(" ");
      if (fields.length >= 3 && fields[2].equals("tracefs")) {
        found.add(fields[1].replace("\\040", " "));
      }
    }
    for (Path preferred : List.of(TRACING, DEBUG_TRACING)) {
      if (found.contains(preferred.toString())) {
        return Optional.of(preferred.toString());
      }
    }
    return Optional.empty();
  }

  // ---- checks ----

  private HostCapabilities.Capabilities capabilities() {
    int lastCap = capLastCap();
    List<String> unknown = new ArrayList<>();
    for (Capability c : Capability.NEEDED.keySet()) {
      if (c.bit() > lastCap) {
        unknown.add(c.name());
      }
    }
    Optional<Long> mask;
    String detail = null;
    try {
      mask = Capability.effectiveMask(readProcFile(Path.of("/proc/self/status")));
      if (mask.isEmpty()) {
        detail = "no CapEff line in /proc/self/status";
      }
    } catch (IOException | RuntimeException e) {
      mask = Optional.empty();
      detail = "cannot read CapEff from /proc/self/status: " + oneLine(e);
    }
    Set<Capability> effective = Capability.inMask(mask.orElse(0L));
    List<String> missing =
        Capability.NEEDED.keySet().stream()
            .filter(c -> c.bit() <= lastCap && !effective.contains(c))
            .map(Enum::name)
            .toList();
    List<String> optionalMissing =
        Capability.OPTIONAL.keySet().stream()
            .filter(c -> c.bit() <= lastCap && !effective.contains(c))
            .map(Enum::name)
            .toList();
    return new HostCapabilities.Capabilities(
        mask.map(m -> String.format("%016x", m)).orElse(null),
        Capability.namesInMask(mask.orElse(0L)),
        missing,
        unknown,
        detail,
        optionalMissing);
  }

  // The highest capability this kernel knows; CAP_BPF and CAP_PERFMON (5.8) are beyond it on older kernels.
  private static int capLastCap() {
    try {
      return Integer.parseInt(readFirstLine(Path.of("/proc/sys/kernel/cap_last_cap")).orElse(""));
    } catch (NumberFormatException e) {
      return Capability.values().length - 1;
    }
  }

  private static HostCapabilities.Btf btf() {
    try (InputStream in = Files.newInputStream(BTF_VMLINUX)) {
      byte[] magic = in.readNBytes(2);
      long size = Files.size(BTF_VMLINUX);
      // BTF_MAGIC 0xeB9F, little-endian on the hosts the agent runs on.
      if (magic.length == 2 && (magic[0] & 0xff) == 0x9f && (magic[1] & 0xff) == 0xeb) {
        return HostCapabilities.Btf.file(true, BTF_VMLINUX.toString(), size, "readable, " + size + " bytes");
      }
      return HostCapabilities.Btf.file(false, BTF_VMLINUX.toString(), size, "readable but does not start with BTF magic");
    } catch (NoSuchFileException e) {
      return HostCapabilities.Btf.file(false, BTF_VMLINUX.toString(), 0, "does not exist: this kernel exposes no BTF");
    } catch (AccessDeniedException e) {
      return HostCapabilities.Btf.file(false, BTF_VMLINUX.toString(), 0, "not readable: permission denied");
    } catch (IOException | RuntimeException e) {
      return HostCapabilities.Btf.file(false, BTF_VMLINUX.toString(), 0, "not readable: " + oneLine(e));
    }
  }

  /** A given BTF file as read: there, readable, starting with the BTF magic. */
  private static HostCapabilities.Btf givenBtfFile(Path file, String outcome) {
    try (InputStream in = Files.newInputStream(file)) {
      byte[] magic = in.readNBytes(2);
      long size = Files.size(file);
      boolean ok = magic.length == 2 && (magic[0] & 0xff) == 0x9f && (magic[1] & 0xff) == 0xeb;
      String detail = ok ? "the given file, " + size + " bytes; " + outcome : "the given file does not start with BTF magic";
      return new HostCapabilities.Btf(false, file.toString(), size, detail, "none", null, WITHOUT_BTF);
    } catch (IOException | RuntimeException e) {
      return new HostCapabilities.Btf(false, file.toString(), 0, "the given file is not readable: " + oneLine(e), "none",
          null, WITHOUT_BTF);
    }
  }

  /**
   * Where bpftrace reads the kernel's types, found by running {@link #TYPE_PROGRAM}: the given file; else
   * wherever bpftrace looks itself; else the kernel's file named in BPFTRACE_BTF (bpftrace 0.17 on 5.10 does
   * not find /sys/kernel/btf/vmlinux by itself). Decided by trying, not by versions.
   */
  private HostCapabilities.Btf btfForBpftrace(Bpftrace bpftrace, HostCapabilities.Btf kernelFile) {
    if (btfFile != null) {
      HostCapabilities.Btf given = givenBtfFile(btfFile, "");
      if (given.detail().contains("not readable") || given.detail().contains("magic")) {
        return given;
      }
      String file = btfFile.toString();
      String failure = typeTrial(bpftrace.withBtf(file));
      return failure == null
          ? new HostCapabilities.Btf(true, file, given.sizeBytes(), "the given file, " + given.sizeBytes()
              + " bytes, read by bpftrace (" + Bpftrace.BTF_VARIABLE + "=" + file + ")", "file", file, null)
          : new HostCapabilities.Btf(false, file, given.sizeBytes(), "bpftrace cannot read the given file: " + failure,
              "none", null, WITHOUT_BTF);
    }
    String own = typeTrial(bpftrace);
    if (own == null) {
      return new HostCapabilities.Btf(true, kernelFile.path(), kernelFile.sizeBytes(),
          kernelFile.detail() + "; bpftrace finds it itself", "kernel", null, null);
    }
    if (kernelFile.available()) {
      String viaVariable = typeTrial(bpftrace.withBtf(kernelFile.path()));
      if (viaVariable == null) {
        return new HostCapabilities.Btf(true, kernelFile.path(), kernelFile.sizeBytes(),
            kernelFile.detail() + "; bpftrace does not find it itself (" + own + "), so the agent sets "
                + Bpftrace.BTF_VARIABLE + "=" + kernelFile.path(), "kernel_file", kernelFile.path(), null);
      }
      own = viaVariable;
    }
    if (!NO_TYPES.matcher(own).find()) {
      // bpftrace failed for another reason (permissions, a broken install): that is not about BTF.
      return new HostCapabilities.Btf(kernelFile.available(), kernelFile.path(), kernelFile.sizeBytes(),
          kernelFile.detail() + "; bpftrace's type check failed: " + own, kernelFile.available() ? "kernel" : "none",
          null, kernelFile.available() ? null : WITHOUT_BTF);
    }
    return new HostCapabilities.Btf(false, kernelFile.path(), kernelFile.sizeBytes(),
        kernelFile.detail() + "; bpftrace: " + own, "none", null, WITHOUT_BTF);
  }

  /** Null when bpftrace resolves {@code struct sock}; else its reason, in one line. */
  private String typeTrial(Bpftrace bpftrace) {
    try {
      ChildProcess.Exit exit = bpftrace.runProgram("bpftrace-btf", TYPE_PROGRAM,
          attachTimeout.compareTo(TYPE_TRIAL_TIMEOUT) > 0 ? attachTimeout : TYPE_TRIAL_TIMEOUT);
      return exit.succeeded() ? null : Bpftrace.failureReason(exit);
    } catch (IOException e) {
      return "could not run bpftrace: " + oneLine(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "interrupted";
    }
  }

  private HostCapabilities.Tracefs tracefs(HostCapabilities.Capabilities capabilities) {
    String where = TRACING + " or " + DEBUG_TRACING;
    Optional<String> mounted;
    try {
      mounted = tracefsMountPoint(readProcFile(Path.of("/proc/self/mounts")));
    } catch (IOException | RuntimeException e) {
      return new HostCapabilities.Tracefs(false, null, false, "cannot read /proc/self/mounts: " + oneLine(e));
    }
    if (mounted.isPresent()) {
      return new HostCapabilities.Tracefs(true, mounted.get(), false, "mounted at " + mounted.get());
    }
    if (!mountTracefs) {
      return new HostCapabilities.Tracefs(false, null, false, "not mounted at " + where);
    }
    if (!Files.isDirectory(TRACING)) {
      return new HostCapabilities.Tracefs(false, null, false, "not mounted, and there is no " + TRACING + " to mount it on");
    }
    if (capabilities.missing().contains(Capability.CAP_SYS_ADMIN.name())) {
      return new HostCapabilities.Tracefs(false, null, false, "not mounted at " + where + "; mounting it needs CAP_SYS_ADMIN");
    }
    List<String> mount = List.of("mount", "-t", "tracefs", "nodev", TRACING.toString());
    try {
      ChildProcess.Exit exit = ChildProcess.run("mount-tracefs", mount, COMMAND_TIMEOUT);
      if (exit.succeeded()) {
        return new HostCapabilities.Tracefs(true, TRACING.toString(), true,
            "was not mounted; mounted it (" + String.join(" ", mount) + ")");
      }
      return new HostCapabilities.Tracefs(false, null, false,
          "not mounted; " + String.join(" ", mount) + " failed: " + lastLine(exit.stderr(), "status " + exit.status()));
    } catch (IOException e) {
      return new HostCapabilities.Tracefs(false, null, false, "not mounted; could not run mount: " + oneLine(e));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return new HostCapabilities.Tracefs(false, null, false, "not mounted; interrupted while mounting");
    }
  }

  private static HostCapabilities.ProcNetstat procNetstat() {
    try {
      String text = readProcFile(PROC_NETSTAT);
      List<String> counters =
          List.of("ListenOverflows", "ListenDrops", "TCPReqQFullDrop").stream().filter(text::contains).toList();
      if (!text.contains("TcpExt:") || counters.isEmpty()) {
        return new HostCapabilities.ProcNetstat(false, PROC_NETSTAT + " has no TcpExt listen counters");
      }
      return new HostCapabilities.ProcNetstat(true, "TcpExt counters readable: " + String.join(", ", counters));
    } catch (IOException | RuntimeException e) {
      return new HostCapabilities.ProcNetstat(false, "cannot read " + PROC_NETSTAT + ": " + oneLine(e));
    }
  }

  private static HostCapabilities.Sysctls sysctls() {
    Map<String, String> unreadable = new LinkedHashMap<>();
    Long somaxconn = sysctl("net.core.somaxconn", unreadable);
    Long synBacklog = sysctl("net.ipv4.tcp_max_syn_backlog", unreadable);
    Long syncookies = sysctl("net.ipv4.tcp_syncookies", unreadable);
    Long abortOnOverflow = sysctl("net.ipv4.tcp_abort_on_overflow", unreadable);
    return new HostCapabilities.Sysctls(somaxconn, synBacklog, syncookies, abortOnOverflow, unreadable);
  }

  private static Long sysctl(String name, Map<String, String> unreadable) {
    Path path = Path.of("/proc/sys", name.split("\\."));
    try {
      return NamespaceSysctls.value(path);
    } catch (IOException | RuntimeException e) {
      unreadable.put(name, "cannot read " + path + ": " + oneLine(e));
      return null;
    }
  }

  private Optional<Path> locateBpftrace() {
    if (bpftraceOverride != null) {
      boolean usable = Files.isRegularFile(bpftraceOverride) && Files.isExecutable(bpftraceOverride);
      return usable ? Optional.of(bpftraceOverride) : Optional.empty();
    }
    return ChildProcess.findExecutable("bpftrace");
  }

  private String bpftraceMissingDetail() {
    if (bpftraceOverride == null) {
      return "bpftrace not found on PATH, nor in /usr/sbin or /usr/bin";
    }
    if (!Files.exists(bpftraceOverride)) {
      return "the given bpftrace " + bpftraceOverride + " does not exist";
    }
    return "the given bpftrace " + bpftraceOverride + " is not an executable file";
  }

  private static HostCapabilities.BpftraceBinary bpftraceVersion(Bpftrace bpftrace) {
    String path = bpftrace.executable().toString();
    try {
      ChildProcess.Exit exit = bpftrace.version(COMMAND_TIMEOUT);
      if (exit.timedOut()) {
        return new HostCapabilities.BpftraceBinary(true, path, null,
            "bpftrace --version did not exit within " + COMMAND_TIMEOUT.toSeconds() + " s and was killed");
      }
      if (!exit.succeeded()) {
        return new HostCapabilities.BpftraceBinary(true, path, null,
            "bpftrace --version failed: " + Bpftrace.failureReason(exit));
      }
      Optional<String> version = Bpftrace.parseVersion(exit.stdout() + "\n" + exit.stderr());
      return new HostCapabilities.BpftraceBinary(true, path, version.orElse(null),
          version.map(v -> "bpftrace " + v).orElse("bpftrace --version printed no version: " + lastLine(exit.stdout(), "")));
    } catch (IOException e) {
      return new HostCapabilities.BpftraceBinary(true, path, null, "could not run bpftrace --version: " + oneLine(e));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return new HostCapabilities.BpftraceBinary(true, path, null, "interrupted");
    }
  }

  private HostCapabilities.AttachResult fentry(Bpftrace bpftrace) {
    HostCapabilities.AttachResult kfunc = attach(bpftrace, "fentry", KFUNC_PROBE);
    if (kfunc.works() || !PROBE_TYPE_NOT_UNDERSTOOD.matcher(kfunc.detail()).find()) {
      return kfunc;
    }
    return attach(bpftrace, "fentry", FENTRY_PROBE);
  }

  private HostCapabilities.AttachResult attach(Bpftrace bpftrace, String kind, String probe) {
    // BEGIN runs once every probe attached: its line is the evidence. An exit status alone is not (a
    // wrapper, a fake or a broken bpftrace can exit 0 having attached nothing).
    String program = probe + " {} BEGIN { printf(\"" + ATTACHED_MARK + "\\n\"); exit(); }";
    try {
      ChildProcess.Exit exit = bpftrace.runProgram("bpftrace-" + kind, program, attachTimeout);
      long millis = exit.took().toMillis();
      if (exit.timedOut()) {
        return new HostCapabilities.AttachResult(false, probe,
            "bpftrace did not exit within " + attachTimeout.toSeconds() + " s and was killed", millis);
      }
      if (exit.succeeded() && exit.stdout().lines().noneMatch(l -> l.strip().equals(ATTACHED_MARK))) {
        return new HostCapabilities.AttachResult(false, probe, "bpftrace exited 0 without the line its BEGIN probe "
            + "prints once the probe is attached: no evidence that it attached", millis);
      }
      return exit.succeeded()
          ? new HostCapabilities.AttachResult(true, probe, "attached", millis)
          : new HostCapabilities.AttachResult(false, probe, Bpftrace.failureReason(exit), millis);
    } catch (IOException e) {
      return new HostCapabilities.AttachResult(false, probe, "could not run bpftrace: " + oneLine(e), 0);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return HostCapabilities.AttachResult.notTried(probe, "interrupted");
    }
  }

  private HostCapabilities.LibbpfTools libbpfTools() {
    Optional<Path> tcpstates = LibbpfToolsProbe.find("tcpstates");
    if (tcpstates.isEmpty()) {
      return new HostCapabilities.LibbpfTools(false, null, null, null, "tcpstates (or tcpstates-libbpf) not found on PATH, nor in /usr/sbin or /usr/bin");
    }
    String path = tcpstates.get().toString();
    try {
      // The package's version first: "tcpstates --version" prints the tool's own fixed "1.0", whatever the release.
      Optional<Path> dpkgQuery = ChildProcess.findExecutable("dpkg-query");
      if (dpkgQuery.isPresent()) {
        ChildProcess.Exit exit = ChildProcess.run("dpkg-query",
            List.of(dpkgQuery.get().toString(), "-W", "-f=${Version}", "libbpf-tools"), COMMAND_TIMEOUT);
        if (exit.succeeded() && !exit.stdout().isBlank()) {
          String version = exit.stdout().strip();
          return new HostCapabilities.LibbpfTools(true, path, version, "dpkg-query -W libbpf-tools",
              "libbpf-tools " + version);
        }
      }
      ChildProcess.Exit exit = ChildProcess.run("tcpstates-version", List.of(path, "--version"), COMMAND_TIMEOUT);
      String line = lastLine(exit.stdout(), "");
      if (exit.succeeded() && !line.isEmpty()) {
        String version = line.replaceFirst("^tcpstates\\s+", "");
        return new HostCapabilities.LibbpfTools(true, path, version, "tcpstates --version", "tcpstates " + version);
      }
      return new HostCapabilities.LibbpfTools(true, path, null, null,
          "version unknown: not a Debian package, and tcpstates --version failed: "
              + lastLine(exit.stderr(), "status " + exit.status()));
    } catch (IOException e) {
      return new HostCapabilities.LibbpfTools(true, path, null, null, "version unknown: " + oneLine(e));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return new HostCapabilities.LibbpfTools(true, path, null, null, "interrupted");
    }
  }

  // ---- small pieces ----

  private <T> T await(Future<T> future, Supplier<T> unfinished) {
    // Each task bounds its own children; this bound only guards against a task that hangs elsewhere.
    long limit = attachTimeout.multipliedBy(2).plus(COMMAND_TIMEOUT).toMillis();
    try {
      return future.get(limit, TimeUnit.MILLISECONDS);
    } catch (TimeoutException | ExecutionException e) {
      future.cancel(true);
      return unfinished.get();
    } catch (InterruptedException e) {
      future.cancel(true);
      Thread.currentThread().interrupt();
      return unfinished.get();
    }
  }

  private static ThreadFactory namedThreads() {
    AtomicInteger n = new AtomicInteger();
    return task -> {
      Thread thread = new Thread(task, "kernel-probe-" + n.incrementAndGet());
      thread.setDaemon(true);
      return thread;
    };
  }

  private static Optional<String> readFirstLine(Path path) {
    try {
      return readProcFile(path).lines().findFirst().map(String::strip);
    } catch (IOException | RuntimeException e) {
      return Optional.empty();
    }
  }

  /**
   * Reads a /proc or /sys file in large reads. Not Files.readString: on a file whose size reads 0 the JDK
   * first reads one byte, and an integer sysctl read from a non-zero offset returns nothing, so
   * /proc/sys/net/core/somaxconn would read "4" instead of "4096".
   */
  static String readProcFile(Path path) throws IOException {
    try (InputStream in = Files.newInputStream(path)) {
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
  }

  private static String lastLine(String text, String otherwise) {
    List<String> lines = text.lines().map(String::strip).filter(l -> !l.isEmpty()).toList();
    return lines.isEmpty() ? otherwise : ChildText.printable(lines.get(lines.size() - 1)); // a child's bytes
  }

  private static String pathText(Path path) {
    return path == null ? null : path.toString();
  }

  private static String oneLine(Throwable e) {
    String message = e.getMessage();
    String text = message == null || message.isBlank() ? e.getClass().getSimpleName() : message;
    return text.replace('\n', ' ');
  }
}
