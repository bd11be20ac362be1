package dev.backlogagent.procfs;

import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Recognises the cgroup paths container runtimes create, so that a listener can be tied to its container.
 *
 * <p>docker: {@code /docker/ID} or {@code docker-ID.scope}; containerd (CRI): {@code cri-containerd-ID.scope}
 * or {@code /kubepods/.../ID}; podman: {@code libpod-ID.scope}; systemd-nspawn: {@code machine-NAME.scope}
 * (the machine name is the id there).
 */
final class ContainerIds {
  private static final List<Pattern> HEX_ID_PATTERNS =
      List.of(
          Pattern.compile("(?:docker|cri-containerd|crio|libpod|containerd)-([0-9a-f]{64})\\.scope"),
          Pattern.compile("/(?:docker|libpod|containerd|crio|kubepods[^ ]*?)/(?:[^/]+/)*?([0-9a-f]{64})(?:/|$)"));
  private static final Pattern NSPAWN = Pattern.compile("/machine\\.slice/machine-([^/]+)\\.scope");

  private ContainerIds() {}

  /** The container id in a /proc/PID/cgroup text, or null when the process is not in a container. */
  static String fromCgroup(String cgroupFile) {
    for (String line : cgroupFile.split("\n")) {
      int path = line.indexOf(':', line.indexOf(':') + 1);
      if (path < 0) {
        continue;
      }
      String cgroup = line.substring(path + 1);
      for (Pattern pattern : HEX_ID_PATTERNS) {
        Matcher m = pattern.matcher(cgroup);
        if (m.find()) {
          return m.group(1);
        }
      }
      Matcher nspawn = NSPAWN.matcher(cgroup);
      if (nspawn.find()) {
        // systemd escapes '-' in unit names as \x2d.
        return nspawn.group(1).replace("\\x2d", "-");
      }
    }
    return null;
  }
}
