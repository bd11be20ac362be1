package dev.backlogagent.procfs;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * Resolves what an operator names a network namespace by — its inode, the pid of a process in it, or its
 * name under /run/netns — to an inode of a namespace that exists now; anything else is an error in one
 * line, so that a typo is not a quiet empty result.
 */
public final class NamespaceTarget {
  /** The largest pid Linux allows (pid_max's ceiling); a larger number is a namespace inode. */
  private static final long PID_MAX_LIMIT = 4_194_304L;
  private static final Pattern NAME = Pattern.compile("[A-Za-z0-9_.@:+-]{1,255}");
  private static final Pattern NUMBER = Pattern.compile("[0-9]{1,19}");

  private NamespaceTarget() {}

  /** Why a namespace reference names no namespace. */
  public static final class UnknownNamespaceException extends Exception {
    public UnknownNamespaceException(String message) {
      super(message);
    }
  }

  /** The inode {@code ref} names among {@code known}; a small number is a pid, read from /proc/PID/ns/net. */
  public static long resolve(String ref, List<NetNamespaceHandle> known, Path proc) throws UnknownNamespaceException {
    return resolve(ref, known, proc, true);
  }

  /** As {@link #resolve(String, List, Path)}; without {@code pids}, every number is an inode (the config's rule). */
  public static long resolve(String ref, List<NetNamespaceHandle> known, Path proc, boolean pids)
      throws UnknownNamespaceException {
    String r = ref == null ? "" : ref.strip();
    if (NUMBER.matcher(r).matches()) {
      long n;
      try {
        n = Long.parseLong(r);
      } catch (NumberFormatException e) {
        throw new UnknownNamespaceException("'" + ref + "' is too large for a namespace inode");
      }
      if (pids && n <= PID_MAX_LIMIT) {
        long inode = NetNamespaces.inodeOf(proc.resolve(n + "/ns/net"));
        if (inode <= 0) {
          throw new UnknownNamespaceException("no process with pid " + n + " (or its namespace is not readable)");
        }
        return inode;
      }
      if (known.stream().noneMatch(h -> h.inode() == n)) {
        throw new UnknownNamespaceException("no network namespace has inode " + n
            + " (no process is in one, and no /run/netns entry names one)");
      }
      return n;
    }
    if (!NAME.matcher(r).matches() || r.equals(".") || r.equals("..")) {
      throw new UnknownNamespaceException("'" + ref + "' is neither a namespace inode, a pid, nor a name under /run/netns");
    }
    Optional<NetNamespaceHandle> named = known.stream().filter(h -> r.equals(h.name())).findFirst();
    return named.orElseThrow(() -> new UnknownNamespaceException("no network namespace named '" + r
        + "' under /run/netns")).inode();
  }

  /** {@link #resolve(String, List, Path)} against the host's namespaces now. */
  public static long resolveOnHost(String ref) throws UnknownNamespaceException {
    return resolve(ref, NetNamespaces.ofHost().discover(), Path.of("/proc"));
  }
}
