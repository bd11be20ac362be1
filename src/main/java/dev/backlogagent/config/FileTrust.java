package dev.backlogagent.config;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.util.Set;

/**
 * Refuses files that would let someone else run code as root: when the agent runs as root, its config
 * (which names the bpftrace binary and program directory) and its BPF programs must be owned by root
 * and writable by nobody else, and so must the directory that holds them (or its files could be swapped).
 */
public final class FileTrust {
  private final boolean asRoot;

  public FileTrust(boolean asRoot) {
    this.asRoot = asRoot;
  }

  /** Checks as root only when this process's effective uid is 0. */
  public static FileTrust forThisProcess() {
    return new FileTrust(effectiveUid() == 0);
  }

  public void check(Path file, String what) throws ConfigException {
    if (!asRoot) {
      return;
    }
    checkOne(file, what);
    Path dir = file.toAbsolutePath().getParent();
    if (dir != null) {
      checkOne(dir, "the directory of " + what + " " + file);
    }
  }

  /**
   * Checks an executable the agent will run as root: the path given, its directory, and, when it is a
   * symbolic link, the file it leads to and that file's directory (replacing any of them runs code as root).
   */
  public void checkExecutable(Path executable, String what) throws ConfigException {
    if (!asRoot) {
      return;
    }
    check(executable, what);
    Path real;
    try {
      real = executable.toRealPath();
    } catch (IOException e) {
      throw new ConfigException(what + " " + executable + ": cannot resolve it: " + e.getMessage());
    }
    if (!real.equals(executable.toAbsolutePath())) {
      check(real, what + " (" + executable + " leads to it)");
    }
  }

  private static void checkOne(Path path, String what) throws ConfigException {
    PosixFileAttributes attrs;
    try {
      attrs = Files.readAttributes(path, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
      if (attrs.isSymbolicLink()) {
        attrs = Files.readAttributes(path, PosixFileAttributes.class);
      }
    } catch (IOException e) {
      throw new ConfigException(what + " " + path + ": cannot read its owner and mode: " + e.getMessage());
    }
    Set<PosixFilePermission> perms = attrs.permissions();
    boolean sticky = attrs.isDirectory() && isSticky(path);
    if (!sticky && (perms.contains(PosixFilePermission.GROUP_WRITE) || perms.contains(PosixFilePermission.OTHERS_WRITE))) {
      throw new ConfigException(what + " " + path + " is writable by group or others; running as root, the agent "
          + "refuses it (chmod go-w " + path + ")");
    }
    if (!"root".equals(attrs.owner().getName())) {
      throw new ConfigException(what + " " + path + " is owned by " + attrs.owner().getName()
          + ", not root; running as root, the agent refuses it (chown root " + path + ")");
    }
  }

  private static boolean isSticky(Path dir) {
    try {
      Object mode = Files.getAttribute(dir, "unix:mode");
      return mode instanceof Integer m && (m & 01000) != 0;
    } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
      return false;
    }
  }

  /** The effective uid, from /proc/self/status (no native call needed); -1 when unreadable. */
  public static int effectiveUid() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith("Uid:")) {
          return Integer.parseInt(line.substring(4).trim().split("\\s+")[1]);
        }
      }
    } catch (IOException | RuntimeException e) {
      // fall through
    }
    return -1;
  }
}
