package dev.backlogagent.daemon;

import dev.backlogagent.config.AgentConfig;
import dev.backlogagent.config.ConfigException;
import dev.backlogagent.procfs.NamespaceTarget;
import dev.backlogagent.procfs.NetNamespaceHandle;
import dev.backlogagent.procfs.NetNamespaces;
import java.net.InetAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Pattern;

/**
 * What the configuration names on this host — the Prometheus endpoint's address, the namespaces of the
 * listeners section — checked against the host as it is, by `run` and `run --check` alike, so that the
 * check refuses what the start would refuse, in one line naming the key.
 */
final class ConfiguredTargets {
  private static final Pattern DOTTED = Pattern.compile("[0-9.]+");

  private ConfiguredTargets() {}

  static void check(AgentConfig config, String source) throws ConfigException {
    AgentConfig.Prometheus p = config.exporters().prometheus();
    if (p.enabled()) {
      String why = prometheusHostProblem(p.host());
      if (why != null) {
        throw new ConfigException(source + ": key 'exporters.prometheus.host': " + why);
      }
    }
    if (!config.listeners().netns().isEmpty()) {
      List<NetNamespaceHandle> known = NetNamespaces.ofHost().discover();
      for (String ref : config.listeners().netns()) {
        try {
          NamespaceTarget.resolve(ref, known, Path.of("/proc"), false);
        } catch (NamespaceTarget.UnknownNamespaceException e) {
          throw new ConfigException(source + ": key 'listeners.netns': " + e.getMessage());
        }
      }
    }
  }

  /** Null when the endpoint can listen on {@code host} here; else why not. */
  static String prometheusHostProblem(String host) {
    InetAddress address;
    if (DOTTED.matcher(host).matches() && !isIpv4(host)) {
      return "'" + host + "' is not an IPv4 address"; // not looked up as a name: no resolver knows 999.1.1.1
    }
    try {
      address = InetAddress.getByName(host);
    } catch (UnknownHostException e) {
      return "'" + host + "' is neither an IP address nor a name this host resolves";
    }
    if (address.isAnyLocalAddress() || address.isLoopbackAddress()) {
      return null;
    }
    try {
      if (NetworkInterface.getByInetAddress(address) == null) {
        return "'" + host + "' (" + address.getHostAddress() + ") is not an address of this host, so nothing can listen on it";
      }
    } catch (SocketException e) {
      return null; // cannot tell: let the start try
    }
    return null;
  }

  private static boolean isIpv4(String s) {
    String[] parts = s.split("\\.", -1);
    if (parts.length != 4) {
      return false;
    }
    for (String part : parts) {
      if (part.isEmpty() || part.length() > 3 || Integer.parseInt(part) > 255) {
        return false;
      }
    }
    return true;
  }
}
