package dev.backlogagent.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * A real terminal for tests: a tmux server of its own (its own socket, so parallel runs never meet), one
 * window of a chosen size running one command; keys go in with send-keys, the screen comes out with
 * capture-pane. The command's exit status and standard error land in files, since the pane closes with it.
 */
public final class Tmux implements AutoCloseable {
  private final String socket;
  private final Path exitFile;
  private final Path errFile;

  private Tmux(String socket, Path exitFile, Path errFile) {
    this.socket = socket;
    this.exitFile = exitFile;
    this.errFile = errFile;
  }

  /** Starts {@code command} (argv) in a {@code columns}×{@code rows} window; {@code dir} holds its script and files. */
  public static Tmux start(Path dir, int columns, int rows, List<String> command) throws IOException, InterruptedException {
    Files.createDirectories(dir);
    String id = UUID.randomUUID().toString().substring(0, 8);
    Path exit = dir.resolve("exit-" + id).toAbsolutePath();
    Path err = dir.resolve("stderr-" + id).toAbsolutePath();
    Path script = dir.resolve("run-" + id + ".sh").toAbsolutePath();
    StringBuilder line = new StringBuilder();
    for (String arg : command) {
      line.append('\'').append(arg.replace("'", "'\\''")).append("' ");
    }
    Files.writeString(script, "#!/bin/sh\n" + line + "2>'" + err + "'\necho $? >'" + exit + ".tmp' && mv '" + exit + ".tmp' '"
        + exit + "'\nsleep 600\n", StandardCharsets.UTF_8);
    Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwx------"));
    Tmux tmux = new Tmux("bl-operator-" + id, exit, err);
    tmux.tmux("new-session", "-d", "-s", "t", "-x", Integer.toString(columns), "-y", Integer.toString(rows), script.toString());
    return tmux;
  }

  /** The visible screen, one string per line, trailing blanks trimmed (tmux's own capture). */
  public List<String> screen() throws IOException, InterruptedException {
    String text = tmux("capture-pane", "-p", "-t", "t");
    return List.of((text.endsWith("\n") ? text.substring(0, text.length() - 1) : text).split("\n", -1));
  }

  /** Polls the screen until {@code done} holds; returns that screen, or fails with the last one seen. */
  public List<String> awaitScreen(Predicate<List<String>> done, long timeoutMillis, String what)
      throws IOException, InterruptedException {
    long deadline = System.currentTimeMillis() + timeoutMillis;
    List<String> last = List.of();
    while (System.currentTimeMillis() < deadline) {
      if (exitStatus() != null) {
        throw new AssertionError("the command exited (" + exitStatus() + ", stderr: " + stderr() + ") before " + what
            + "; last screen:\n" + String.join("\n", last));
      }
      last = screen();
      if (done.test(last)) {
        return last;
      }
      Thread.sleep(250);
    }
    throw new AssertionError("timed out waiting for " + what + "; last screen:\n" + String.join("\n", last));
  }

  /** Types keys as tmux names them: "q", "Enter", "Down", "8080" (each argument one send-keys key). */
  public void sendKeys(String... keys) throws IOException, InterruptedException {
    List<String> args = new ArrayList<>(List.of("send-keys", "-t", "t"));
    args.addAll(List.of(keys));
    tmux(args.toArray(String[]::new));
  }

  /** The pid of the pane's first process (the script that runs the command). */
  public long panePid() throws IOException, InterruptedException {
    return Long.parseLong(tmux("display-message", "-p", "-t", "t", "#{pane_pid}").strip());
  }

  public void resize(int columns, int rows) throws IOException, InterruptedException {
    tmux("resize-window", "-t", "t", "-x", Integer.toString(columns), "-y", Integer.toString(rows));
  }

  /** The command's exit status once it has exited, else null. */
  public Integer exitStatus() throws IOException {
    return Files.exists(exitFile) ? Integer.valueOf(Files.readString(exitFile).strip()) : null;
  }

  public Integer awaitExit(long timeoutMillis) throws IOException, InterruptedException {
    long deadline = System.currentTimeMillis() + timeoutMillis;
    while (exitStatus() == null && System.currentTimeMillis() < deadline) {
      Thread.sleep(100);
    }
    return exitStatus();
  }

  public String stderr() throws IOException {
    return Files.exists(errFile) ? Files.readString(errFile) : "";
  }

  private String tmux(String... args) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>(List.of("tmux", "-L", socket, "-f", "/dev/null"));
    command.addAll(List.of(args));
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(10, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new IOException("tmux " + String.join(" ", args) + " timed out");
    }
    if (p.exitValue() != 0) {
      throw new IOException("tmux " + String.join(" ", args) + " exited " + p.exitValue() + ": " + out.strip());
    }
    return out;
  }

  /** Ends the server, and with it the window and whatever still runs in it (tmux sends it SIGHUP). */
  @Override
  public void close() throws IOException, InterruptedException {
    try {
      tmux("kill-server");
    } catch (IOException e) {
      // already gone
    }
  }
}
