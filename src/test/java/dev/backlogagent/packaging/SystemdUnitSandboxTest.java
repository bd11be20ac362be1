package dev.backlogagent.packaging;

import static org.assertj.core.api.Assertions.assertThat;

import dev.backlogagent.kernel.Capability;
import dev.backlogagent.testing.KernelTests;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.jar.Attributes;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.jar.JarOutputStream;
import java.util.jar.Manifest;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The installed unit started by a real systemd (systemd/test/boot-under-systemd.sh: systemd as PID 1 of new
 * pid and mount namespaces, on an overlay of this host): its sandbox, capabilities and seccomp filters
 * applied by systemd itself, bpftrace attaching inside them, readiness, reload and stop.
 */
class SystemdUnitSandboxTest {

  private static final Map<String, String> PROOF = new TreeMap<>();
  private static Path out;

  @BeforeAll
  static void bootTheUnitUnderSystemd(@TempDir Path tmp) throws Exception {
    KernelTests.assumeKernel("starting the unit under systemd");
    KernelTests.require(Files.isExecutable(Path.of("/lib/systemd/systemd")),
        "starting the unit under systemd needs /lib/systemd/systemd (Debian package systemd)");
    for (String command : List.of("unshare", "setpriv", "ip", "python3")) {
      KernelTests.requireCommand(command);
    }
    Path agentJar = tmp.resolve("backlog-agent.jar");
    runnableJar(agentJar);
    Path probeJar = tmp.resolve("notify-probe.jar");
    manifestOnlyJar(probeJar, NotifyProbe.class.getName(), "backlog-agent.jar");

    out = tmp.resolve("out");
    InstallTree.Run run = InstallTree.run(
        List.of(Path.of("systemd/test/boot-under-systemd.sh").toAbsolutePath().toString(), out.toString()),
        Map.of("BACKLOG_AGENT_JAR", agentJar.toString(), "NOTIFY_PROBE_JAR", probeJar.toString()),
        // The script's own limit (BACKLOG_SYSTEMD_TIMEOUT, 330 s) ends it first; the doctor and ladder
        // trials inside the sandbox take well over a minute on a loaded 2-core machine.
        350);
    // For a person reading a failure: everything the proof wrote, kept after the temporary directory goes.
    Path kept = Files.createDirectories(Path.of("target", "systemd-proof"));
    try (Stream<Path> files = Files.list(out)) {
      for (Path file : files.toList()) {
        Files.copy(file, kept.resolve(file.getFileName()), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
      }
    }
    assertThat(run.exit()).as("boot-under-systemd.sh: %s%s (see target/systemd-proof/)", run.out(), run.err()).isZero();
    for (String line : Files.readAllLines(out.resolve("proof.txt"))) {
      int eq = line.indexOf('=');
      PROOF.put(line.substring(0, eq), line.substring(eq + 1));
    }
  }

  @Test
  void the_launcher_s_java_reports_ready_reloads_on_sighup_and_stops_cleanly() throws Exception {
    assertThat(PROOF).containsEntry("notify.start.rc", "0")
        .containsEntry("notify.started.ActiveState", "active")
        .containsEntry("notify.started.SubState", "running")
        .containsEntry("notify.main.comm", "java")
        .containsEntry("notify.reload.rc", "0")
        .containsEntry("notify.reloaded.StatusText", "probe: reloaded")
        .containsEntry("notify.reloaded.ActiveState", "active")
        .containsEntry("notify.stop.rc", "0")
        .containsEntry("notify.stopped.Result", "success")
        .containsEntry("notify.stopped.ActiveState", "inactive");
    assertThat(PROOF.get("notify.started.StatusText")).startsWith("probe: attached at ");
    assertThat(Files.readString(out.resolve("notify-probe.txt")))
        .contains("enabled=true", "ready=true", "reloading=true", "ready after reload=true", "stopping=true");
  }

  @Test
  void the_service_runs_as_root_with_exactly_the_allowed_capabilities_no_new_privileges_and_seccomp() {
    String mask = String.format("%016x", capabilityMask(Set.of(Capability.CAP_BPF, Capability.CAP_PERFMON,
        Capability.CAP_SYS_ADMIN, Capability.CAP_SYS_PTRACE, Capability.CAP_DAC_READ_SEARCH)));
    for (String process : List.of("notify.main", "run.main", "run.bpftrace")) {
      assertThat(PROOF).as(process).containsEntry(process + ".CapEff", mask)
          .containsEntry(process + ".CapBnd", mask)
          .containsEntry(process + ".NoNewPrivs", "1")
          .containsEntry(process + ".Seccomp", "2");
    }
    assertThat(PROOF).containsEntry("run.bpftrace.comm", "bpftrace")
        .containsEntry("run.cgroup", "/system.slice/backlog-agent.service");
  }

  @Test
  void inside_the_sandbox_bpf_programs_attach_and_another_users_listener_in_another_namespace_is_named()
      throws Exception {
    assertThat(PROOF).containsEntry("doctor.rc", "0").containsEntry("doctor.Result", "success");
    String doctor = Files.readString(out.resolve("doctor.txt"));
    assertThat(doctor).containsPattern("attach tracepoint +works").containsPattern("\ntier: (tracepoint|kprobe) ");

    // The daemon as installed: ready (Type=notify) once its programs attached, reloaded, stopped cleanly.
    assertThat(PROOF).containsEntry("run.start.rc", "0").containsEntry("run.started.ActiveState", "active")
        .containsEntry("run.reload.rc", "0").containsEntry("run.reloaded.ActiveState", "active")
        .containsEntry("run.stop.rc", "0").containsEntry("run.Result", "success").containsEntry("run.ExecMainStatus", "0")
        .containsEntry("bpftrace.left", "0");
    assertThat(PROOF.get("run.started.StatusText")).matches("tier (tracepoint|kprobe), \\d+ BPF concern\\(s\\) running");
    String run = Files.readString(out.resolve("run.txt"));
    assertThat(run).containsPattern("(?m)^tier (tracepoint|kprobe) .*programs \\[LISTEN").contains("\nconfiguration reloaded from ")
        .contains("\nstopped");
    // Named from /proc/PID/fd of a process of another user (CAP_DAC_READ_SEARCH, CAP_SYS_PTRACE), in a
    // namespace entered with setns (CAP_SYS_ADMIN, RestrictNamespaces=net), counted from its sk_drops.
    assertThat(run).containsPattern("python3\\[\\d+\\] 127\\.0\\.0\\.1:9191 \\d+ SYNs and third ACKs \\(accept queue full");
    // The state directory systemd made, with the unit's UMask.
    assertThat(PROOF).containsEntry("state.directory.mode", "750").containsEntry("state.file.mode", "600")
        .containsEntry("state.has.9191", "1");
  }

  @Test
  void with_bpf_denied_by_a_drop_in_the_installed_unit_starts_at_the_ftrace_rung_and_reports() throws Exception {
    // SystemCallFilter=~bpf on top of the unit's own filter: no BPF program can load. /sys/kernel/tracing stays
    // read-only (ProtectKernelTunables=yes); the unit's bound view of tracefs is writable for the instance.
    assertThat(PROOF).containsEntry("nobpf.start.rc", "0").containsEntry("nobpf.started.ActiveState", "active")
        .containsEntry("nobpf.main.Seccomp", "2").containsEntry("nobpf.instances", "1")
        .containsEntry("nobpf.stop.rc", "0").containsEntry("nobpf.Result", "success")
        .containsEntry("nobpf.instances.left", "0");
    assertThat(PROOF.get("nobpf.tracefs")).startsWith("ro,");
    assertThat(PROOF.get("nobpf.tracefs.bound")).startsWith("rw,");
    assertThat(PROOF.get("nobpf.started.StatusText")).matches("tier ftrace, [1-9]\\d* BPF concern\\(s\\) running");
    String run = Files.readString(out.resolve("nobpf.txt"));
    assertThat(run).containsPattern("(?m)^tier ftrace \\(.*\\): programs \\[LISTEN")
        .containsPattern("python3\\[\\d+\\] 127\\.0\\.0\\.1:9292 \\d+ SYNs and third ACKs \\(accept queue full")
        .contains("\nstopped");
  }

  private static long capabilityMask(Set<Capability> capabilities) {
    return capabilities.stream().mapToLong(c -> 1L << c.bit()).reduce(0, (a, b) -> a | b);
  }

  /**
   * The agent as one runnable jar, made from this test's class path: the packaged jar may not exist yet
   * (verify runs the tests before it packages). Service files are merged, as the shade plugin does.
   */
  private static void runnableJar(Path jar) throws IOException {
    String classPath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
    Manifest manifest = new Manifest();
    manifest.getMainAttributes().put(Attributes.Name.MANIFEST_VERSION, "1.0");
    manifest.getMainAttributes().put(Attributes.Name.MAIN_CLASS, "dev.backlogagent.cli.BacklogAgent");
    Set<String> written = new HashSet<>();
    Map<String, ByteArrayOutputStream> services = new LinkedHashMap<>();
    try (JarOutputStream to = new JarOutputStream(Files.newOutputStream(jar), manifest)) {
      written.add("META-INF/MANIFEST.MF");
      for (String element : classPath.split(File.pathSeparator)) {
        Path entry = Path.of(element);
        if (Files.isDirectory(entry)) {
          try (Stream<Path> files = Files.walk(entry)) {
            for (Path file : files.filter(Files::isRegularFile).toList()) {
              try (InputStream in = Files.newInputStream(file)) {
                add(to, entry.relativize(file).toString().replace(File.separatorChar, '/'), in, written, services);
              }
            }
          }
        } else if (Files.isRegularFile(entry)) {
          try (JarFile from = new JarFile(entry.toFile())) {
            for (JarEntry e : from.stream().filter(e -> !e.isDirectory()).toList()) {
              try (InputStream in = from.getInputStream(e)) {
                add(to, e.getName(), in, written, services);
              }
            }
          }
        }
      }
      for (Map.Entry<String, ByteArrayOutputStream> service : services.entrySet()) {
        to.putNextEntry(new JarEntry(service.getKey()));
        service.getValue().writeTo(to);
        to.closeEntry();
      }
    }
  }

  private static void add(JarOutputStream to, String name, InputStream in, Set<String> written,
      Map<String, ByteArrayOutputStream> services) throws IOException {
    if (name.startsWith("META-INF/services/")) {
      ByteArrayOutputStream service = services.computeIfAbsent(name, n -> new ByteArrayOutputStream());
      in.transferTo(service);
      service.write('\n');
      return;
    }
    boolean signature = name.startsWith("META-INF/") && name.matches("META-INF/[^/]+\\.(SF|DSA|RSA|EC)");
    if (signature || name.endsWith("module-info.class") || !written.add(name)) {
      return;
    }
    to.putNextEntry(new JarEntry(name));
    in.transferTo(to);
    to.closeEntry();
  }

  private static void manifestOnlyJar(Path jar, String mainClass, String classPath) throws IOException {
    Manifest manifest = new Manifest();
    manifest.getMainAttributes().put(Attributes.Name.MANIFEST_VERSION, "1.0");
    manifest.getMainAttributes().put(Attributes.Name.MAIN_CLASS, mainClass);
    manifest.getMainAttributes().put(Attributes.Name.CLASS_PATH, classPath);
    try (OutputStream file = Files.newOutputStream(jar); JarOutputStream to = new JarOutputStream(file, manifest)) {
      to.flush();
    }
  }
}
