package dev.backlogagent.kernel;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * Where tracefs can take the ftrace tier's instance: its usual mount points, and the writable view the shipped
 * systemd unit binds under its runtime directory ({@code BindPaths=-/sys/kernel/tracing:/run/backlog-agent/tracefs}),
 * because its {@code ProtectKernelTunables=} makes /sys/kernel/tracing itself read-only and systemd lets no
 * {@code ReadWritePaths=} undo that for the same path. A root that lists {@code instances} and is writable comes
 * first; else the first that lists them (its mkdir then says why not).
 */
public final class TracefsRoots {
  /** In order of preference. */
  public static final List<Path> ROOTS = List.of(Path.of("/sys/kernel/tracing"), Path.of("/sys/kernel/debug/tracing"),
      Path.of("/run/backlog-agent/tracefs"));

  private TracefsRoots() {}

  /** The tracefs root to make an instance in, if any has instances. */
  public static Optional<Path> forInstances() {
    List<Path> withInstances = ROOTS.stream().filter(root -> Files.isDirectory(root.resolve("instances"))).toList();
    return withInstances.stream().filter(root -> Files.isWritable(root.resolve("instances"))).findFirst()
        .or(() -> withInstances.stream().findFirst());
  }
}
