package dev.backlogagent.packaging;

import static org.assertj.core.api.Assertions.assertThat;

import dev.backlogagent.testing.KernelTests;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** agent/install, run for real into a staging root (DESTDIR), as a packager and as an upgrade would. */
class InstallTest {

  private static final String UNIT = "usr/lib/systemd/system/backlog-agent.service";

  @Test
  void a_packager_staging_prefix_usr_gets_every_file_in_place_with_modes_the_daemon_accepts(@TempDir Path tmp)
      throws Exception {
    Path tree = InstallTree.copy(tmp.resolve("src"), true, true);
    Path dest = tmp.resolve("pkgroot");

    InstallTree.Run run = InstallTree.install(tree, Map.of("PREFIX", "/usr", "DESTDIR", dest.toString()), List.of());

    assertThat(run.exit()).as(run.err()).isZero();
    Map<String, String> expected = new LinkedHashMap<>();
    expected.put("usr/bin/backlog-agent", "rwxr-xr-x");
    expected.put("usr/lib/backlog-agent/backlog-agent.jar", "rw-r--r--");
    for (String program : InstallTree.programs()) {
      expected.put("usr/share/backlog-agent/bpf/" + program, "rw-r--r--");
    }
    expected.put("usr/share/backlog-agent/examples/backlog-agent.env", "rw-r--r--");
    expected.put("usr/share/backlog-agent/examples/config.yaml", "rw-r--r--");
    for (String file : InstallTree.MONITORING) {
      expected.put("usr/share/backlog-agent/" + file.substring("agent/".length()), "rw-r--r--");
    }
    expected.put(UNIT, "rw-r--r--");
    expected.put("etc/default/backlog-agent", "rw-------");
    expected.put("etc/backlog-agent/config.yaml", "rw-r-----");
    assertThat(InstallTree.files(dest)).containsExactlyInAnyOrderEntriesOf(expected);
    assertThat(InstallTree.programs()).contains("listen.bt", "kprobe/synrefused.bt"); // both tiers, same tree
    assertThat(InstallTree.directories(dest)).allSatisfy((dir, mode) -> assertThat(mode).as(dir).isEqualTo("rwxr-xr-x"));
    if (KernelTests.effectiveUid() == 0) {
      for (String file : expected.keySet()) {
        assertThat(Files.getAttribute(dest.resolve(file), "unix:uid")).as(file).isEqualTo(0);
        assertThat(Files.getAttribute(dest.resolve(file), "unix:gid")).as(file).isEqualTo(0);
      }
    }

    assertThat(dest.resolve("usr/lib/backlog-agent/backlog-agent.jar")).hasSameBinaryContentAs(tree.resolve("target/backlog-agent.jar"));
    assertThat(dest.resolve("usr/bin/backlog-agent")).hasSameTextualContentAs(tree.resolve("agent/backlog-agent"));
    assertThat(dest.resolve("usr/share/backlog-agent/bpf/kprobe/synrefused.bt"))
        .hasSameTextualContentAs(tree.resolve("bpf/kprobe/synrefused.bt"));
    assertThat(dest.resolve("etc/default/backlog-agent")).hasSameTextualContentAs(tree.resolve("systemd/backlog-agent.env"));
    for (String file : InstallTree.MONITORING) {
      assertThat(dest.resolve("usr/share/backlog-agent/" + file.substring("agent/".length()))).hasSameTextualContentAs(tree.resolve(file));
    }
    assertThat(dest.resolve("etc/backlog-agent/config.yaml")).hasSameTextualContentAs(tree.resolve("agent/config.yaml"));
    String unit = Files.readString(dest.resolve(UNIT));
    assertThat(unit).contains("\nExecStart=/usr/bin/backlog-agent run\n").doesNotContain("@PREFIX@");
    assertThat(unit.replace("/usr/bin/backlog-agent", "@PREFIX@/bin/backlog-agent"))
        .isEqualTo(Files.readString(tree.resolve("systemd/backlog-agent.service")));

    assertThat(run.out()).contains("installed  " + dest.resolve(UNIT), "installed  " + dest.resolve("etc/default/backlog-agent"));
    assertThat(run.err()).isEmpty();
  }

  @Test
  void an_upgrade_keeps_the_operators_etc_files_replaces_the_jar_by_rename_and_drops_removed_programs(@TempDir Path tmp)
      throws Exception {
    Path tree = InstallTree.copy(tmp.resolve("src"), true, true);
    Path dest = tmp.resolve("root");
    Map<String, String> variables = Map.of("PREFIX", "/usr", "DESTDIR", dest.toString());
    assertThat(InstallTree.install(tree, variables, List.of()).exit()).isZero();
    Path config = dest.resolve("etc/backlog-agent/config.yaml");
    Path environment = dest.resolve("etc/default/backlog-agent");
    Files.writeString(config, "# the operator's own\ninterval: 5s\n");
    Files.writeString(environment, "OTEL_EXPORTER_OTLP_ENDPOINT=http://collector.internal:4317\n");
    Map<String, String> before = InstallTree.files(dest);

    InstallTree.Run again = InstallTree.install(tree, variables, List.of());

    assertThat(again.exit()).as(again.err()).isZero();
    assertThat(config).hasContent("# the operator's own\ninterval: 5s");
    assertThat(environment).hasContent("OTEL_EXPORTER_OTLP_ENDPOINT=http://collector.internal:4317");
    assertThat(InstallTree.files(dest)).isEqualTo(before);
    assertThat(again.out()).contains("kept       " + config, "kept       " + environment,
        "unchanged  " + dest.resolve("usr/lib/backlog-agent/backlog-agent.jar"));
    assertThat(again.out()).doesNotContain("installed");

    // A new version: another jar, one program changed, one gone.
    Path jar = dest.resolve("usr/lib/backlog-agent/backlog-agent.jar");
    Object jarInode = Files.getAttribute(jar, "unix:ino");
    InstallTree.write(tree.resolve("target/backlog-agent.jar"), "the next version's jar\n");
    InstallTree.write(tree.resolve("bpf/listen.bt"), "// listen.bt, next version\n");
    Files.delete(tree.resolve("bpf/kprobe/synrefused.bt"));

    InstallTree.Run upgrade = InstallTree.install(tree, variables, List.of());

    assertThat(upgrade.exit()).as(upgrade.err()).isZero();
    assertThat(jar).hasContent("the next version's jar");
    // A new inode: a running JVM keeps mapping the jar it opened instead of crashing on a rewritten one.
    assertThat(Files.getAttribute(jar, "unix:ino")).isNotEqualTo(jarInode);
    assertThat(dest.resolve("usr/share/backlog-agent/bpf/listen.bt")).hasContent("// listen.bt, next version");
    assertThat(dest.resolve("usr/share/backlog-agent/bpf/kprobe/synrefused.bt")).doesNotExist();
    assertThat(upgrade.out()).contains("removed    " + dest.resolve("usr/share/backlog-agent/bpf/kprobe/synrefused.bt"));
    assertThat(config).hasContent("# the operator's own\ninterval: 5s");
    assertThat(InstallTree.files(dest).get("usr/lib/backlog-agent/backlog-agent.jar")).isEqualTo("rw-r--r--");
  }

  @Test
  void the_default_prefix_is_usr_local_and_the_installed_launcher_runs_the_installed_jar(@TempDir Path tmp)
      throws Exception {
    Path tree = InstallTree.copy(tmp.resolve("src"), true, false);
    Path dest = tmp.resolve("root");
    InstallTree.Run run = InstallTree.install(tree, Map.of("DESTDIR", dest.toString()), List.of());
    assertThat(run.exit()).as(run.err()).isZero();
    assertThat(dest.resolve("usr/local/lib/systemd/system/backlog-agent.service"))
        .content().contains("\nExecStart=/usr/local/bin/backlog-agent run\n");
    assertThat(run.out()).doesNotContain("note: systemd does not look");

    // A java that prints its arguments: which jar the installed launcher picks, and with what.
    Path fakeJava = tmp.resolve("jdk/bin/java");
    Files.createDirectories(fakeJava.getParent());
    Files.writeString(fakeJava, "#!/bin/sh\nprintf '%s\\n' \"$@\"\n");
    Files.setPosixFilePermissions(fakeJava, PosixFilePermissions.fromString("rwxr-xr-x"));
    InstallTree.Run launched = InstallTree.run(List.of(dest.resolve("usr/local/bin/backlog-agent").toString(), "run"),
        Map.of("JAVA_HOME", tmp.resolve("jdk").toString(), "BACKLOG_AGENT_JAVA_OPTS", "-Xmx192m"));
    assertThat(launched.exit()).as(launched.err()).isZero();
    List<String> arguments = launched.out().lines().toList();
    int jarAt = arguments.indexOf("-jar") + 1;
    assertThat(jarAt).isPositive();
    assertThat(Path.of(arguments.get(jarAt)).toRealPath())
        .isEqualTo(dest.resolve("usr/local/lib/backlog-agent/backlog-agent.jar").toRealPath());
    assertThat(arguments.subList(jarAt + 1, arguments.size())).containsExactly("run");
    assertThat(arguments).contains("-XX:+UseSerialGC", "-Xmx192m");
  }

  @Test
  void a_tree_without_an_example_config_installs_the_rest_and_says_it_skipped_it(@TempDir Path tmp) throws Exception {
    Path tree = InstallTree.copy(tmp.resolve("src"), true, false);
    Path dest = tmp.resolve("root");
    InstallTree.Run run = InstallTree.install(tree, Map.of("PREFIX", "/usr", "DESTDIR", dest.toString()), List.of());
    assertThat(run.exit()).as(run.err()).isZero();
    assertThat(dest.resolve("etc/backlog-agent")).isDirectory().isEmptyDirectory();
    assertThat(dest.resolve("usr/share/backlog-agent/examples/config.yaml")).doesNotExist();
    assertThat(run.out()).contains("skipped    " + dest.resolve("etc/backlog-agent/config.yaml"));
    assertThat(dest.resolve(UNIT)).exists();
  }

  @Test
  void without_a_built_jar_install_writes_nothing_and_says_in_one_line_how_to_build_it(@TempDir Path tmp) throws Exception {
    Path tree = InstallTree.copy(tmp.resolve("src"), false, true);
    Path dest = tmp.resolve("root");
    InstallTree.Run run = InstallTree.install(tree, Map.of("DESTDIR", dest.toString()), List.of());
    assertThat(run.exit()).isEqualTo(1);
    assertThat(run.err().lines()).singleElement().asString()
        .contains("target/backlog-agent.jar not found", "mvn -B package -DskipTests");
    assertThat(dest).doesNotExist();
  }

  @Test
  void a_relative_or_unquotable_prefix_is_refused_before_anything_is_written(@TempDir Path tmp) throws Exception {
    Path tree = InstallTree.copy(tmp.resolve("src"), true, true);
    Path dest = tmp.resolve("root");
    for (String prefix : List.of("usr", "/opt/backlog agent", "/opt/a|b")) {
      InstallTree.Run run = InstallTree.install(tree, Map.of("PREFIX", prefix, "DESTDIR", dest.toString()), List.of());
      assertThat(run.exit()).as(prefix).isEqualTo(2);
      assertThat(run.err()).as(prefix).contains(prefix);
    }
    assertThat(dest).doesNotExist();
  }

  @Test
  void a_packager_who_is_not_root_gets_the_same_modes_and_is_told_about_ownership(@TempDir Path tmp) throws Exception {
    Path tree = InstallTree.copy(tmp.resolve("src"), true, true);
    Path dest = tmp.resolve("root");
    List<String> asNobody = List.of();
    int uid = KernelTests.effectiveUid();
    if (uid == 0) {
      // Run as nobody: the tree must be reachable and the staging root writable for that user.
      Path setpriv = KernelTests.requireCommand("setpriv");
      asNobody = List.of(setpriv.toString(), "--reuid=65534", "--regid=65534", "--clear-groups");
      Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwxrwxrwx"));
      uid = 65534;
    }
    InstallTree.Run run = InstallTree.install(tree, Map.of("PREFIX", "/usr", "DESTDIR", dest.toString()), asNobody);
    assertThat(run.exit()).as(run.err()).isZero();
    assertThat(run.out()).contains("not root: files stay owned by");
    Map<String, String> files = InstallTree.files(dest);
    assertThat(files).containsEntry("usr/bin/backlog-agent", "rwxr-xr-x")
        .containsEntry("usr/lib/backlog-agent/backlog-agent.jar", "rw-r--r--")
        .containsEntry("etc/default/backlog-agent", "rw-------")
        .containsEntry("etc/backlog-agent/config.yaml", "rw-r-----");
    assertThat(Files.getAttribute(dest.resolve("usr/lib/backlog-agent/backlog-agent.jar"), "unix:uid")).isEqualTo(uid);
  }
}
