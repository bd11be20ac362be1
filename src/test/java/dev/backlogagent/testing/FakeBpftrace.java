package dev.backlogagent.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * A small script standing in for bpftrace, passed with {@code --bpftrace} or {@code bpftrace:}: it answers
 * {@code --version} like bpftrace 0.17, fails every {@code -e} probe (as doctor's attach tries) unless told
 * otherwise, and for a program run ({@code bpftrace -f json -B none FILE ARGS}) runs the given shell text,
 * which prints what a fault suite's child printed. Made root-owned, mode 755, in a 755 directory, so that
 * the agent's trust check accepts it.
 */
public final class FakeBpftrace {
  private FakeBpftrace() {}

  /** The JSON line bpftrace prints before attaching. */
  public static final String ATTACHED = "echo '{\"type\": \"attached_probes\", \"data\": {\"probes\": 3}}'\n";
  /** The agent's heartbeat, forever, one a second: a live child. */
  public static final String HEARTBEATS =
      "while :; do printf '%s\\n' '{\"type\": \"printf\", \"data\": \"backlog-agent heartbeat\\n\"}'; sleep 1; done\n";

  /** Writes the script as {@code dir/bpftrace}; {@code program} is what a program run does. */
  public static Path write(Path dir, String program) throws IOException {
    return write(dir, "echo 'ERROR: the fake bpftrace attaches nothing' >&2; exit 1", program);
  }

  /** As {@link #write(Path, String)}, with {@code probe} what a {@code -e PROGRAM} run does. */
  public static Path write(Path dir, String probe, String program) throws IOException {
    Files.createDirectories(dir);
    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
    Path script = dir.resolve("bpftrace");
    Files.writeString(script, "#!/bin/sh\n"
        + "case \"$1\" in\n"
        + "  --version) echo 'bpftrace v0.17.0'; exit 0;;\n"
        + "  -e) " + probe + ";;\n"
        + "esac\n"
        + program + "\n");
    Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwxr-xr-x"));
    return script;
  }
}
