package dev.backlogagent.packaging;

import static org.assertj.core.api.Assertions.assertThat;

import dev.backlogagent.kernel.Capability;
import dev.backlogagent.testing.KernelTests;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The unit agent/install writes, checked by systemd's own parser (systemd-analyze verify and security) and
 * against what the agent needs: systemd cannot start it here (PID 1 is not systemd), so this is the proof.
 */
class SystemdUnitTest {

  private static final Path SOURCE = Path.of("systemd/backlog-agent.service");
  private static final Set<String> GRANTED =
      Set.of("CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH");

  @Test
  void the_installed_unit_passes_systemd_analyze_verify_without_a_word_about_it(@TempDir Path tmp) throws Exception {
    Path unit = installedUnitForVerify(tmp);

    List<String> problems = verify(unit);

    assertThat(problems).isEmpty();
  }

  @Test
  void the_same_check_fails_a_unit_with_an_unknown_key_a_bad_value_or_a_missing_program(@TempDir Path tmp)
      throws Exception {
    Path good = installedUnitForVerify(tmp);
    String text = Files.readString(good);
    Map<String, String> broken = new LinkedHashMap<>();
    broken.put("an unknown key", text.replace("\nRestart=always\n", "\nRestart=always\nRestartt=always\n"));
    broken.put("a bad value", text.replace("\nRestartSec=5s\n", "\nRestartSec=soon\n"));
    broken.put("a missing program", text.replaceAll("(?m)^ExecStart=\\S+", "ExecStart=" + tmp.resolve("no-such-launcher")));
    for (Map.Entry<String, String> b : broken.entrySet()) {
      assertThat(b.getValue()).as(b.getKey()).isNotEqualTo(text);
      Path dir = Files.createDirectories(tmp.resolve("broken-" + b.getKey().replace(' ', '-')));
      Path unit = dir.resolve("backlog-agent.service");
      Files.writeString(unit, b.getValue());
      assertThat(verify(unit)).as(b.getKey()).isNotEmpty();
    }
  }

  @Test
  void systemd_rates_the_units_exposure_at_most_4_of_10(@TempDir Path tmp) throws Exception {
    Path unit = installedUnitForVerify(tmp);
    Path analyze = KernelTests.requireCommand("systemd-analyze");
    InstallTree.Run run = InstallTree.run(
        List.of(analyze.toString(), "security", "--offline=true", "--threshold=40", "--no-pager", unit.toString()),
        Map.of());
    Matcher exposure = Pattern.compile("Overall exposure level for backlog-agent.service: (\\d+\\.\\d)").matcher(run.out());
    assertThat(exposure.find()).as(run.out() + run.err()).isTrue();
    assertThat(Double.parseDouble(exposure.group(1))).isLessThanOrEqualTo(4.0);
    assertThat(run.exit()).as("exit status with --threshold=40").isZero();
  }

  @Test
  void root_keeps_only_the_capabilities_the_agent_needs_and_the_unit_says_why_it_goes_without_the_others()
      throws Exception {
    Map<String, List<String>> unit = directives(Files.readString(SOURCE));
    assertThat(words(unit.get("CapabilityBoundingSet"))).isEqualTo(new TreeSet<>(GRANTED));
    assertThat(words(unit.get("AmbientCapabilities"))).isEqualTo(new TreeSet<>(GRANTED));
    assertThat(unit).doesNotContainKey("User").doesNotContainKey("DynamicUser"); // bpftrace runs as root only

    // Every capability doctor checks for is either granted or explained in the unit's comments.
    String comments = Files.readString(SOURCE).lines().filter(l -> l.startsWith("#")).reduce("", (a, b) -> a + b + "\n");
    String notGranted = comments.substring(comments.indexOf("Not granted"));
    java.util.Set<Capability> reported = new java.util.LinkedHashSet<>(Capability.NEEDED.keySet());
    reported.addAll(Capability.OPTIONAL.keySet());
    for (Capability needed : reported) {
      if (!GRANTED.contains(needed.name())) {
        assertThat(notGranted).as("why the unit goes without " + needed).contains(needed.name());
      }
    }
    for (String granted : GRANTED) {
      assertThat(Capability.NEEDED).as("doctor should know the agent needs " + granted)
          .containsKey(Capability.valueOf(granted));
    }
    // And what it needs is exactly what is granted: doctor under the unit reports nothing missing.
    assertThat(Capability.NEEDED.keySet().stream().map(Enum::name).collect(java.util.stream.Collectors.toSet()))
        .isEqualTo(new TreeSet<>(GRANTED));
    // Without a privileged memlock limit, bpftrace on kernels before 5.11 would need CAP_SYS_RESOURCE.
    assertThat(unit.get("LimitMEMLOCK")).containsExactly("infinity");
  }

  @Test
  void the_unit_keeps_what_a_jvm_and_bpftrace_need_and_the_contract_with_the_daemon() throws Exception {
    Map<String, List<String>> unit = directives(Files.readString(SOURCE));
    assertThat(unit.get("Type")).containsExactly("notify");
    assertThat(unit.get("NotifyAccess")).containsExactly("main");
    assertThat(unit.get("ExecStart")).containsExactly("@PREFIX@/bin/backlog-agent run");
    assertThat(unit.get("ExecReload")).containsExactly("/bin/kill -HUP $MAINPID");
    assertThat(unit.get("Restart")).containsExactly("always");
    assertThat(unit.get("EnvironmentFile")).containsExactly("-/etc/default/backlog-agent");
    assertThat(unit.get("StateDirectory")).containsExactly("backlog-agent");
    assertThat(unit.get("ConfigurationDirectory")).containsExactly("backlog-agent");
    assertThat(unit.get("NoNewPrivileges")).containsExactly("yes");
    assertThat(unit.get("ProtectSystem")).containsExactly("strict");
    assertThat(unit.get("PrivateTmp")).containsExactly("yes");
    // The JIT writes code; the inventory reads every process's /proc/PID and /proc/sys, /proc/net.
    assertThat(unit).doesNotContainKeys("MemoryDenyWriteExecute", "ProtectProc", "ProcSubset", "PrivateNetwork",
        "PrivateUsers", "ReadOnlyPaths", "InaccessiblePaths");
    // Netlink for sock_diag, IP for the exporters, unix for sd_notify.
    assertThat(words(unit.get("RestrictAddressFamilies"))).contains("AF_NETLINK", "AF_UNIX", "AF_INET", "AF_INET6");
    // Joining network namespaces must stay allowed.
    assertThat(unit.get("RestrictNamespaces")).containsExactly("net");
    // A deny-list that never takes bpf(2), perf_event_open(2), setns(2), mount(2) or setrlimit(2) away.
    List<String> filter = unit.get("SystemCallFilter");
    assertThat(filter).allSatisfy(f -> assertThat(f).startsWith("~"));
    assertThat(words(filter).toString()).doesNotContain("@debug", "@privileged", "@mount", "@resources", "bpf",
        "perf_event_open", "setns", "@system-service");
  }

  /** The unit as agent/install writes it for PREFIX=/usr, with ExecStart pointing at the DESTDIR copy. */
  private static Path installedUnitForVerify(Path tmp) throws Exception {
    Path tree = InstallTree.copy(tmp.resolve("src"), true, true);
    Path dest = tmp.resolve("root");
    InstallTree.Run run = InstallTree.install(tree, Map.of("PREFIX", "/usr", "DESTDIR", dest.toString()), List.of());
    assertThat(run.exit()).as(run.err()).isZero();
    String installed = Files.readString(dest.resolve("usr/lib/systemd/system/backlog-agent.service"));
    // verify checks that ExecStart's program exists and is executable: the staged launcher is.
    String forVerify = installed.replace("\nExecStart=/usr/bin/backlog-agent ",
        "\nExecStart=" + dest.resolve("usr/bin/backlog-agent") + " ");
    assertThat(forVerify).isNotEqualTo(installed);
    Path unit = Files.createDirectories(tmp.resolve("verify")).resolve("backlog-agent.service");
    Files.writeString(unit, forVerify);
    return unit;
  }

  /**
   * What systemd-analyze verify says about {@code unit}: its lines that name the unit, and its exit status
   * when not 0. Lines about the host's other units are not this unit's problems.
   */
  private static List<String> verify(Path unit) throws Exception {
    Path analyze = KernelTests.requireCommand("systemd-analyze");
    InstallTree.Run run = InstallTree.run(List.of(analyze.toString(), "verify", "--man=no", unit.toString()), Map.of());
    List<String> problems = new ArrayList<>();
    (run.out() + run.err()).lines()
        .filter(l -> l.contains("backlog-agent.service") || l.contains(unit.toString()))
        .forEach(problems::add);
    if (run.exit() != 0) {
      problems.add("exit status " + run.exit() + ": " + run.err().strip());
    }
    return problems;
  }

  /** The [Unit]/[Service]/[Install] assignments of a unit file, each key with its values in order. */
  private static Map<String, List<String>> directives(String text) {
    Map<String, List<String>> directives = new LinkedHashMap<>();
    for (String line : text.lines().toList()) {
      String l = line.strip();
      if (l.isEmpty() || l.startsWith("#") || l.startsWith(";") || l.startsWith("[")) {
        continue;
      }
      int eq = l.indexOf('=');
      directives.computeIfAbsent(l.substring(0, eq).strip(), k -> new ArrayList<>()).add(l.substring(eq + 1).strip());
    }
    return directives;
  }

  private static TreeSet<String> words(List<String> values) {
    TreeSet<String> words = new TreeSet<>();
    for (String value : values) {
      words.addAll(Arrays.asList(value.replace("~", "").split("\\s+")));
    }
    return words;
  }
}
