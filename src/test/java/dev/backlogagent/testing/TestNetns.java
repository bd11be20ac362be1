package dev.backlogagent.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

/**
 * A network namespace made for one test, with only {@code lo} (up) and no route out, removed with every
 * process in it when closed. Traffic in tests goes only here or to the host's loopback.
 */
public final class TestNetns implements AutoCloseable {
  private static final ObjectMapper JSON = new ObjectMapper();
  private final String name;
  private final List<Process> started = new ArrayList<>();

  private TestNetns(String name) {
    this.name = name;
  }

  /** Creates a namespace named bltest-…, brings lo up, and applies sysctls given as "key=value". */
  public static TestNetns create(String... sysctls) throws IOException, InterruptedException {
    TestNetns ns = new TestNetns("bltest-" + UUID.randomUUID().toString().substring(0, 8));
    run("ip", "netns", "add", ns.name);
    try {
      ns.exec("ip", "link", "set", "lo", "up");
      for (String sysctl : sysctls) {
        ns.exec("sysctl", "-q", "-w", sysctl);
      }
    } catch (IOException | RuntimeException e) {
      ns.close();
      throw e;
    }
    return ns;
  }

  public String name() {
    return name;
  }

  /** The namespace's inode, as the agent reports it. */
  public long inode() throws IOException {
    return ((Number) Files.getAttribute(Path.of("/run/netns", name), "unix:ino")).longValue();
  }

  /** Runs a command inside the namespace to its end and returns its standard output. */
  public String exec(String... command) throws IOException, InterruptedException {
    List<String> full = new ArrayList<>(List.of("ip", "netns", "exec", name));
    full.addAll(List.of(command));
    return run(full.toArray(String[]::new));
  }

  /** ss -ltnmH inside the namespace. */
  public SsListeners ss() throws IOException, InterruptedException {
    return SsListeners.parse(exec("ss", "-ltnmH"));
  }

  /** nstat -asz inside the namespace: every counter, absolute, history untouched. */
  public Nstat nstat() throws IOException, InterruptedException {
    return Nstat.parse(exec("nstat", "-asz"));
  }

  /** Starts the listener fixture in the namespace and waits for its "listening" line. */
  public ListenerProcess startListener(String... args) throws IOException {
    return startListener(true, args);
  }

  ListenerProcess startListener(boolean inside, String... args) throws IOException {
    Path script = Fixtures.path("listener.py");
    List<String> command = new ArrayList<>();
    if (inside) {
      command.addAll(List.of("ip", "netns", "exec", name));
    }
    command.addAll(List.of("python3", script.toString()));
    command.addAll(List.of(args));
    Process process = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start();
    started.add(process);
    return ListenerProcess.awaitReady(process);
  }

  /** Runs a command on the host to its end; fails with its output when it fails. */
  public static String run(String... command) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(30, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new IOException(String.join(" ", command) + " timed out");
    }
    if (p.exitValue() != 0) {
      throw new IOException(String.join(" ", command) + " exited " + p.exitValue() + ": " + out.strip());
    }
    return out;
  }

  @Override
  public void close() throws IOException, InterruptedException {
    for (Process p : started) {
      p.descendants().forEach(ProcessHandle::destroyForcibly);
      p.destroyForcibly();
      p.waitFor(5, TimeUnit.SECONDS);
    }
    // Anything else still in the namespace (a forked child) goes too, or the namespace would linger.
    try {
      for (String pid : run("ip", "netns", "pids", name).split("\\s+")) {
        if (!pid.isBlank()) {
          ProcessHandle.of(Long.parseLong(pid)).ifPresent(ProcessHandle::destroyForcibly);
        }
      }
    } catch (IOException e) {
      // Namespace already gone.
    }
    try {
      run("ip", "netns", "del", name);
    } catch (IOException e) {
      // Already gone.
    }
  }

  /** A running listener fixture: its pid, port, and forked child's pid. */
  public record ListenerProcess(Process process, long pid, int port, Long childPid, BufferedReader lines) {
    static ListenerProcess awaitReady(Process process) throws IOException {
      BufferedReader reader =
          new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
      String line = reader.readLine();
      if (line == null) {
        throw new IOException("listener fixture ended before listening");
      }
      JsonNode ready = JSON.readTree(line);
      JsonNode child = ready.get("child_pid");
      return new ListenerProcess(
          process,
          ready.get("pid").asLong(),
          ready.get("port").asInt(),
          child == null || child.isNull() ? null : child.asLong(),
          reader);
    }

    /** Asks the fixture (started with --connect-later) for n more connections and waits for them. */
    public void connect(int n) throws IOException {
      OutputStream in = process.getOutputStream();
      in.write((n + "\n").getBytes(StandardCharsets.US_ASCII));
      in.flush();
      if (lines.readLine() == null) {
        throw new IOException("listener fixture ended");
      }
    }

    public void stop() throws InterruptedException {
      process.descendants().forEach(ProcessHandle::destroyForcibly);
      process.destroyForcibly();
      process.waitFor(5, TimeUnit.SECONDS);
      if (childPid != null) {
        ProcessHandle.of(childPid).ifPresent(ProcessHandle::destroyForcibly);
      }
    }
  }
}
