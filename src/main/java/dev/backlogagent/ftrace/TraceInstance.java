package dev.backlogagent.ftrace;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The agent's own tracefs instance, {@code instances/backlog-agent-PID-START-N}: a ring buffer and event
 * switches of its own, so it never touches the global buffer or another tool's settings, and two agents never
 * see each other's events. The name carries the owner's pid and start time (clock ticks since boot, field 22
 * of /proc/PID/stat), so an instance whose owner is gone — an agent killed with SIGKILL — is recognised and
 * removed at the next start, and a recycled pid is not mistaken for its owner.
 */
public final class TraceInstance implements AutoCloseable {
  private static final System.Logger LOG = System.getLogger(TraceInstance.class.getName());
  static final String PREFIX = "backlog-agent-";
  private static final Pattern NAME = Pattern.compile(Pattern.quote(PREFIX) + "(\\d+)-(\\d+)-[0-9a-f]+");

  private final Path tracefs;
  private final Path directory;
  private final List<Path> enabled = new ArrayList<>();
  private boolean closed;

  private TraceInstance(Path tracefs, Path directory) {
    this.tracefs = tracefs;
    this.directory = directory;
  }

  /** Where tracefs is mounted with instance support, if anywhere (a writable mount first). */
  public static Optional<Path> locateTracefs() {
    return dev.backlogagent.kernel.TracefsRoots.forInstances();
  }

  /** Makes a new instance, tracing off until events are enabled. */
  public static TraceInstance create(Path tracefs) throws IOException {
    long pid = ProcessHandle.current().pid();
    String start = startTime(pid).orElse("0");
    String name = PREFIX + pid + "-" + start + "-" + Long.toHexString(System.nanoTime() & 0xffffffffL);
    Path directory = tracefs.resolve("instances").resolve(name);
    try {
      Files.createDirectory(directory);
    } catch (FileSystemException e) {
      throw new IOException("cannot create tracefs instance " + directory + ": " + reason(e), e);
    }
    return new TraceInstance(tracefs, directory);
  }

  /**
   * Removes the instances of agents that are no longer running (owner pid gone, or now another process);
   * returns their names. Instances of live agents, and anything not named like ours, are left alone.
   */
  public static List<String> removeAbandoned(Path tracefs) {
    List<String> removed = new ArrayList<>();
    try (DirectoryStream<Path> instances = Files.newDirectoryStream(tracefs.resolve("instances"), PREFIX + "*")) {
      for (Path instance : instances) {
        String name = instance.getFileName().toString();
        Matcher m = NAME.matcher(name);
        if (!m.matches()) {
          continue;
        }
        Optional<String> ownerStart = startTime(Long.parseLong(m.group(1)));
        if (ownerStart.isPresent() && ownerStart.get().equals(m.group(2))) {
          continue; // its agent is alive
        }
        try {
          Files.delete(instance);
          removed.add(name);
          LOG.log(System.Logger.Level.INFO, "removed tracefs instance {0} left by an agent that is gone", name);
        } catch (IOException e) {
          LOG.log(System.Logger.Level.WARNING, "cannot remove abandoned tracefs instance {0}: {1}", name, reason(e));
        }
      }
    } catch (IOException e) {
      LOG.log(System.Logger.Level.WARNING, "cannot list tracefs instances: {0}", reason(e));
    }
    return removed;
  }

  // Field 22 of /proc/PID/stat, after the parenthesised comm (which may hold spaces and parentheses).
  static Optional<String> startTime(long pid) {
    try {
      String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"), StandardCharsets.US_ASCII);
      String[] after = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
      return Optional.of(after[19]);
    } catch (IOException | RuntimeException e) {
      return Optional.empty();
    }
  }

  public Path directory() {
    return directory;
  }

  public String name() {
    return directory.getFileName().toString();
  }

  /** The tracefs root's description of an event ({@code events/SYSTEM/NAME/format}), or empty if absent. */
  public Optional<String> format(String system, String event) throws IOException {
    Path file = tracefs.resolve("events").resolve(system).resolve(event).resolve("format");
    try {
      return Optional.of(read(file));
    } catch (NoSuchFileException e) {
      return Optional.empty();
    }
  }

  /** Where the data of a page starts: the offset of {@code data} in {@code events/header_page}. */
  public int pageDataOffset() {
    try {
      Matcher m = Pattern.compile("char data;\\s*offset:(\\d+);\\s*size:(\\d+);").matcher(read(tracefs.resolve("events/header_page")));
      if (m.find()) {
        return Integer.parseInt(m.group(1));
      }
    } catch (IOException | RuntimeException e) {
      // the layout of every 64-bit kernel
    }
    return 16;
  }

  /** The size of one page (sub-buffer) of this instance's buffer, which a read of trace_pipe_raw must hold. */
  public int pageSize() {
    try {
      return Integer.parseInt(read(directory.resolve("buffer_subbuf_size_kb")).strip()) * 1024;
    } catch (IOException | RuntimeException e) {
      return 4096; // before 6.8 sub-buffers are one page
    }
  }

  /** Uses the first of {@code clocks} this kernel offers for the instance's timestamps; false if none. */
  public boolean useClock(String... clocks) {
    for (String clock : clocks) {
      try {
        write(directory.resolve("trace_clock"), clock);
        return true;
      } catch (IOException e) {
        // not offered here: the next
      }
    }
    return false;
  }

  /** Sets one event's filter (in the kernel's filter language) and enables it in this instance. */
  public void enable(String system, String event, String filter) throws IOException {
    Path dir = directory.resolve("events").resolve(system).resolve(event);
    if (!Files.isDirectory(dir)) {
      throw new IOException("no event " + system + ":" + event + " in this kernel");
    }
    if (filter != null && !filter.isBlank()) {
      try {
        write(dir.resolve("filter"), filter);
      } catch (IOException e) {
        throw new IOException("the kernel refused filter '" + filter + "' for " + system + ":" + event + ": " + reason(e), e);
      }
    }
    try {
      write(dir.resolve("enable"), "1");
    } catch (IOException e) {
      throw new IOException("cannot enable " + system + ":" + event + ": " + reason(e), e);
    }
    enabled.add(dir);
  }

  /** The per-CPU raw pipes of this instance's buffer. */
  public List<Path> rawPipes() throws IOException {
    List<Path> pipes = new ArrayList<>();
    try (DirectoryStream<Path> cpus = Files.newDirectoryStream(directory.resolve("per_cpu"), "cpu*")) {
      for (Path cpu : cpus) {
        Path pipe = cpu.resolve("trace_pipe_raw");
        if (Files.exists(pipe)) {
          pipes.add(pipe);
        }
      }
    }
    pipes.sort(null);
    return pipes;
  }

  /** Events the kernel overwrote or could not store in this instance's buffer (the per-CPU "overrun" lines). */
  public long overruns() {
    long total = 0;
    try (DirectoryStream<Path> cpus = Files.newDirectoryStream(directory.resolve("per_cpu"), "cpu*")) {
      for (Path cpu : cpus) {
        for (String line : read(cpu.resolve("stats")).lines().toList()) {
          if (line.startsWith("overrun:") || line.startsWith("dropped events:")) {
            total += Long.parseLong(line.substring(line.indexOf(':') + 1).strip());
          }
        }
      }
    } catch (IOException | RuntimeException e) {
      return total;
    }
    return total;
  }

  /** Disables this instance's events and removes it; idempotent. */
  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    for (Path event : enabled) {
      try {
        write(event.resolve("enable"), "0");
      } catch (IOException e) {
        // removing the instance disables them anyway
      }
    }
    IOException last = null;
    for (int attempt = 0; attempt < 50; attempt++) {
      try {
        Files.deleteIfExists(directory);
        return;
      } catch (IOException e) {
        last = e; // EBUSY while a reader still holds a pipe open
        try {
          Thread.sleep(20);
        } catch (InterruptedException ie) {
          Thread.currentThread().interrupt();
          break;
        }
      }
    }
    LOG.log(System.Logger.Level.WARNING, "cannot remove tracefs instance {0}: {1}", directory, last == null ? "interrupted" : reason(last));
  }

  static String read(Path file) throws IOException {
    try (InputStream in = Files.newInputStream(file)) {
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
  }

  private static void write(Path file, String text) throws IOException {
    Files.write(file, (text + "\n").getBytes(StandardCharsets.US_ASCII), StandardOpenOption.WRITE);
  }

  private static String reason(IOException e) {
    if (e instanceof FileSystemException f && f.getReason() != null) {
      return f.getReason();
    }
    return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
  }
}
