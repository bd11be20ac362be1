package dev.backlogagent.testing;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * `backlog-agent run` as a real process (its own JVM, with the launcher's memory flags), so that tests can
 * send it signals, read what it prints and look at its children, as systemd would.
 */
public final class DaemonProcess implements AutoCloseable {
  private final Process process;
  private final List<String> out = new CopyOnWriteArrayList<>();
  private final List<String> err = new CopyOnWriteArrayList<>();

  private DaemonProcess(Process process) {
    this.process = process;
    drain(process.getInputStream(), out, "daemon-stdout");
    drain(process.getErrorStream(), err, "daemon-stderr");
  }

  /** Starts `run` with {@code args}, the given environment added to this one's (null value: removed). */
  public static DaemonProcess start(Map<String, String> env, String... args) throws IOException {
    List<String> command = new ArrayList<>(List.of(javaBinary(), "-XX:+UseSerialGC", "-Xmx96m", "-XX:TieredStopAtLevel=1",
        "-XX:+ExitOnOutOfMemoryError", // as the launcher: an OOM anywhere ends the JVM (exit 3), it does not hide
        "-cp", System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")),
        "dev.backlogagent.cli.BacklogAgent", "run"));
    command.addAll(List.of(args));
    ProcessBuilder pb = new ProcessBuilder(command);
    env.forEach((k, v) -> {
      if (v == null) {
        pb.environment().remove(k);
      } else {
        pb.environment().put(k, v);
      }
    });
    pb.environment().keySet().removeIf(k -> k.startsWith("OTEL_") && !env.containsKey(k));
    return new DaemonProcess(pb.start());
  }

  /** Writes a config file the agent accepts as root (mode 644 in a 755 directory). */
  public static Path config(Path dir, String yaml) throws IOException {
    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
    Path file = dir.resolve("config.yaml");
    Files.writeString(file, yaml);
    Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-r--r--"));
    return file;
  }

  public static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  private static String javaBinary() {
    return Path.of(System.getProperty("java.home"), "bin", "java").toString();
  }

  private static void drain(InputStream stream, List<String> into, String name) {
    Thread t = new Thread(() -> {
      try (BufferedReader r = new BufferedReader(new InputStreamReader(stream, StandardCharsets.UTF_8))) {
        for (String line = r.readLine(); line != null; line = r.readLine()) {
          into.add(line);
        }
      } catch (IOException e) {
        // the process ended
      }
    }, name);
    t.setDaemon(true);
    t.start();
  }

  /** Waits for a stdout line that matches; fails with everything printed so far. */
  public String awaitLine(Predicate<String> matches, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (System.nanoTime() < deadline) {
      for (String line : out) {
        if (matches.test(line)) {
          return line;
        }
      }
      if (!process.isAlive()) {
        Thread.sleep(200); // let the drain threads finish
        for (String line : out) {
          if (matches.test(line)) {
            return line;
          }
        }
        throw new AssertionError("the daemon exited " + process.exitValue() + "; " + transcript());
      }
      Thread.sleep(100);
    }
    throw new AssertionError("no matching line within " + timeout + "; " + transcript());
  }

  /** Waits until the programs attached (the start line). */
  public String awaitStarted() throws InterruptedException {
    return awaitLine(l -> l.startsWith("tier "), Duration.ofSeconds(90));
  }

  public String transcript() {
    return "stdout:\n" + String.join("\n", out) + "\nstderr:\n" + String.join("\n", err);
  }

  public List<String> stdout() {
    return List.copyOf(out);
  }

  public List<String> stderr() {
    return List.copyOf(err);
  }

  public long pid() {
    return process.pid();
  }

  /** The pids of every process below the daemon (its bpftrace children, through setpriv). */
  public List<Long> descendants() {
    return process.descendants().map(ProcessHandle::pid).toList();
  }

  public void signal(String name) throws IOException, InterruptedException {
    TestNetns.run("kill", "-" + name, Long.toString(process.pid()));
  }

  /** Waits for the exit; returns its code, or throws when it takes longer than {@code timeout}. */
  public int awaitExit(Duration timeout) throws InterruptedException {
    if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
      throw new AssertionError("the daemon did not exit within " + timeout + "; " + transcript());
    }
    return process.exitValue();
  }

  /** A process's resident set size in kB (VmRSS of /proc/PID/status); 0 when it is gone. */
  public static long rssKb(long pid) {
    try {
      for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
        if (line.startsWith("VmRSS:")) {
          return Long.parseLong(line.replaceAll("[^0-9]", ""));
        }
      }
    } catch (IOException e) {
      // gone
    }
    return 0;
  }

  /** GET from the daemon's Prometheus endpoint. */
  public static String scrape(int port) throws IOException, InterruptedException {
    HttpResponse<String> r = HttpClient.newHttpClient().send(
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/metrics")).timeout(Duration.ofSeconds(5)).build(),
        HttpResponse.BodyHandlers.ofString());
    return r.body();
  }

  @Override
  public void close() {
    process.descendants().forEach(ProcessHandle::destroyForcibly);
    process.destroyForcibly();
    try {
      process.waitFor(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
