package dev.backlogagent.kernel;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Tries bcc's libbpf-tools the agent would run, each started for a moment: a tool attaches when it prints
 * its column header (they print it after attaching), and fails when it exits first, with its last stderr
 * line (e.g. solisten on a kernel without kprobes: "failed to attach BPF programs: -2").
 */
public final class LibbpfToolsProbe {
  /** The tools of the libbpf-tools tier, in the order doctor lists them. */
  public static final List<String> TOOLS = List.of("solisten", "tcpstates", "tcpsynbl");

  private LibbpfToolsProbe() {}

  /**
   * Where a tool is: under its own name (Debian 12's libbpf-tools 0.26: {@code /usr/sbin/tcpstates}) or with the
   * suffix Debian 13's 0.31 gives them beside bcc's Python tools ({@code /usr/sbin/tcpstates-libbpf}).
   */
  public static Optional<Path> find(String tool) {
    Optional<Path> plain = ChildProcess.findExecutable(tool);
    return plain.isPresent() ? plain : ChildProcess.findExecutable(tool + "-libbpf");
  }

  static List<HostCapabilities.ToolAttach> tryAll(Duration timeout) {
    List<CompletableFuture<HostCapabilities.ToolAttach>> tries = new ArrayList<>();
    for (String tool : TOOLS) {
      tries.add(CompletableFuture.supplyAsync(() -> tryOne(tool, timeout)));
    }
    return tries.stream().map(CompletableFuture::join).toList();
  }

  /**
   * The command that runs {@code tool} dying with the agent ({@code setpriv --pdeathsig KILL}) and writing
   * its stdout line by line ({@code stdbuf -oL}: the tools use stdio, fully buffered on a pipe, so their
   * header and events would otherwise arrive 4 KB at a time).
   */
  public static List<String> lineBuffered(Path tool) {
    List<String> command = new ArrayList<>();
    ChildProcess.findExecutable("setpriv").ifPresent(s -> command.addAll(List.of(s.toString(), "--pdeathsig", "KILL", "--")));
    ChildProcess.findExecutable("stdbuf").ifPresent(s -> command.addAll(List.of(s.toString(), "-oL")));
    command.add(tool.toString());
    return command;
  }

  /** Starts {@code tool} and waits for its header or its exit. */
  public static HostCapabilities.ToolAttach tryOne(String tool, Duration timeout) {
    Optional<Path> path = find(tool);
    if (path.isEmpty()) {
      return new HostCapabilities.ToolAttach(tool, false, tool + " not found", 0);
    }
    long start = System.nanoTime();
    List<String> command = new ArrayList<>();
    command.addAll(lineBuffered(path.get()));
    Process process;
    try {
      process = new ProcessBuilder(command).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
    } catch (IOException e) {
      return new HostCapabilities.ToolAttach(tool, false, "cannot start: " + e.getMessage(), 0);
    }
    try {
      CompletableFuture<String> header = CompletableFuture.supplyAsync(() -> {
        try (BufferedReader out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
          return out.readLine();
        } catch (IOException e) {
          return null;
        }
      });
      CompletableFuture<String> lastError = CompletableFuture.supplyAsync(() -> {
        String last = null;
        try (BufferedReader err = new BufferedReader(new InputStreamReader(process.getErrorStream(), StandardCharsets.UTF_8))) {
          for (String line = err.readLine(); line != null; line = err.readLine()) {
            if (!line.isBlank()) {
              last = line.strip();
            }
          }
        } catch (IOException e) {
          // the child is gone
        }
        return last;
      });
      String first;
      try {
        first = header.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
      } catch (Exception e) {
        first = null;
      }
      long millis = (System.nanoTime() - start) / 1_000_000;
      if (first != null && !first.isBlank() && process.isAlive()) {
        return new HostCapabilities.ToolAttach(tool, true, "attached (printed its header)", millis);
      }
      process.destroy();
      try {
        process.waitFor(2, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      String why;
      try {
        why = lastError.get(2, TimeUnit.SECONDS);
      } catch (Exception e) {
        why = null;
      }
      String status = process.isAlive() ? "no header within " + timeout.toSeconds() + " s" : "exit " + process.exitValue();
      return new HostCapabilities.ToolAttach(tool, false, why == null ? status : why + " (" + status + ")", millis);
    } finally {
      process.destroyForcibly();
    }
  }
}
