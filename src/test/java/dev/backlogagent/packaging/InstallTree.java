package dev.backlogagent.packaging;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A copy of what agent/install reads from a checkout (the script, the launcher, systemd/, bpf/, the example
 * config and a stand-in for the built jar), so that tests can run the real script on files they may change.
 * Every copied file is made world-writable, as in a careless checkout: the modes installed must come from
 * the install step, not from the sources.
 */
final class InstallTree {

  static final String SAMPLE_CONFIG = "# a test's stand-in for agent/config.yaml\ninterval: 1s\n";
  private static final Path REPO = Path.of("").toAbsolutePath();

  private InstallTree() {}

  /** The result of one run of the script. */
  record Run(int exit, String out, String err) {}

  /** Copies the install inputs into {@code tree}; a jar and a config only when asked for. */
  /** The rules and dashboard agent/install puts beside the examples, as paths in the checkout. */
  static final List<String> MONITORING = List.of("agent/prometheus/backlog-agent.rules.yml",
      "agent/prometheus/backlog-agent.rules.test.yml", "agent/grafana/backlog-agent.dashboard.json");

  static Path copy(Path tree, boolean withJar, boolean withConfig) throws IOException {
    copyFile("agent/install", tree);
    copyFile("agent/backlog-agent", tree);
    copyFile("systemd/backlog-agent.service", tree);
    copyFile("systemd/backlog-agent.env", tree);
    for (String file : MONITORING) {
      copyFile(file, tree);
    }
    try (Stream<Path> files = Files.walk(REPO.resolve("bpf"))) {
      for (Path file : files.filter(Files::isRegularFile).toList()) {
        copyFile(REPO.relativize(file).toString(), tree);
      }
    }
    if (withConfig) {
      Path config = REPO.resolve("agent/config.yaml");
      write(tree.resolve("agent/config.yaml"),
          Files.exists(config) ? Files.readString(config) : SAMPLE_CONFIG);
    }
    if (withJar) {
      write(tree.resolve("target/backlog-agent.jar"), "a stand-in for the agent's jar\n");
    }
    return tree;
  }

  /** The programs agent/install must install: bpf/**.bt of the checkout, as paths relative to bpf/. */
  static List<String> programs() throws IOException {
    try (Stream<Path> files = Files.walk(REPO.resolve("bpf"))) {
      return files.filter(f -> f.toString().endsWith(".bt"))
          .map(f -> REPO.resolve("bpf").relativize(f).toString())
          .sorted()
          .toList();
    }
  }

  /** Writes {@code text} to {@code file} (parents created), world-writable. */
  static void write(Path file, String text) throws IOException {
    Files.createDirectories(file.getParent());
    Files.writeString(file, text, StandardCharsets.UTF_8);
    Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-rw-rw-"));
  }

  /**
   * Runs {@code tree}'s agent/install with only {@code variables} of PREFIX, DESTDIR, SYSTEMDUNITDIR and
   * BACKLOG_AGENT_JAR set, behind {@code prefix} (e.g. setpriv to run as another user) when given.
   */
  static Run install(Path tree, Map<String, String> variables, List<String> prefix) throws Exception {
    List<String> command = new ArrayList<>(prefix);
    command.add(tree.resolve("agent/install").toString());
    return run(command, variables);
  }

  /** Runs {@code command} with a clean set of the variables the install and the launcher read. */
  static Run run(List<String> command, Map<String, String> variables) throws Exception {
    return run(command, variables, 60);
  }

  /** The same, allowed {@code seconds} before it is killed (booting systemd under load takes longer). */
  static Run run(List<String> command, Map<String, String> variables, int seconds) throws Exception {
    ProcessBuilder builder = new ProcessBuilder(command);
    Map<String, String> environment = builder.environment();
    for (String name : List.of("PREFIX", "DESTDIR", "SYSTEMDUNITDIR", "BACKLOG_AGENT_JAR", "JAVA_HOME",
        "BACKLOG_AGENT_JAVA_OPTS")) {
      environment.remove(name);
    }
    environment.putAll(variables);
    Path out = Files.createTempFile("install-out-", ".txt");
    Path err = Files.createTempFile("install-err-", ".txt");
    try {
      Process process = builder.redirectOutput(out.toFile()).redirectError(err.toFile()).start();
      if (!process.waitFor(seconds, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        throw new AssertionError(command + " did not finish in " + seconds + " s");
      }
      return new Run(process.exitValue(), Files.readString(out), Files.readString(err));
    } finally {
      Files.deleteIfExists(out);
      Files.deleteIfExists(err);
    }
  }

  /** Every regular file under {@code root} by its path relative to root, with its mode, e.g. "rw-r--r--". */
  static Map<String, String> files(Path root) throws IOException {
    Map<String, String> files = new TreeMap<>();
    try (Stream<Path> all = Files.walk(root)) {
      for (Path file : all.filter(Files::isRegularFile).toList()) {
        files.put(root.relativize(file).toString(), PosixFilePermissions.toString(Files.getPosixFilePermissions(file)));
      }
    }
    return files;
  }

  /** Every directory under {@code root} (root included) with its mode. */
  static Map<String, String> directories(Path root) throws IOException {
    Map<String, String> directories = new TreeMap<>();
    try (Stream<Path> all = Files.walk(root)) {
      for (Path dir : all.filter(Files::isDirectory).toList()) {
        directories.put(root.relativize(dir).toString(), PosixFilePermissions.toString(Files.getPosixFilePermissions(dir)));
      }
    }
    return directories;
  }

  private static void copyFile(String relative, Path tree) throws IOException {
    Path target = tree.resolve(relative);
    Files.createDirectories(target.getParent());
    Files.copy(REPO.resolve(relative), target);
    boolean executable = Files.isExecutable(REPO.resolve(relative));
    Files.setPosixFilePermissions(target, PosixFilePermissions.fromString(executable ? "rwxrwxrwx" : "rw-rw-rw-"));
  }
}
