package dev.backlogagent.kernel;

import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/** Linux capabilities, declared in the order of their bit numbers, and the ones the agent needs with why. */
public enum Capability {
  CAP_CHOWN,
  CAP_DAC_OVERRIDE,
  CAP_DAC_READ_SEARCH,
  CAP_FOWNER,
  CAP_FSETID,
  CAP_KILL,
  CAP_SETGID,
  CAP_SETUID,
  CAP_SETPCAP,
  CAP_LINUX_IMMUTABLE,
  CAP_NET_BIND_SERVICE,
  CAP_NET_BROADCAST,
  CAP_NET_ADMIN,
  CAP_NET_RAW,
  CAP_IPC_LOCK,
  CAP_IPC_OWNER,
  CAP_SYS_MODULE,
  CAP_SYS_RAWIO,
  CAP_SYS_CHROOT,
  CAP_SYS_PTRACE,
  CAP_SYS_PACCT,
  CAP_SYS_ADMIN,
  CAP_SYS_BOOT,
  CAP_SYS_NICE,
  CAP_SYS_RESOURCE,
  CAP_SYS_TIME,
  CAP_SYS_TTY_CONFIG,
  CAP_MKNOD,
  CAP_LEASE,
  CAP_AUDIT_WRITE,
  CAP_AUDIT_CONTROL,
  CAP_SETFCAP,
  CAP_MAC_OVERRIDE,
  CAP_MAC_ADMIN,
  CAP_SYSLOG,
  CAP_WAKE_ALARM,
  CAP_BLOCK_SUSPEND,
  CAP_AUDIT_READ,
  CAP_PERFMON,
  CAP_BPF,
  CAP_CHECKPOINT_RESTORE;

  /** What the agent needs each capability for, in the order doctor lists them. */
  public static final Map<Capability, String> NEEDED =
      orderedMap(
          CAP_BPF, "load BPF programs and maps",
          CAP_PERFMON, "attach BPF programs to tracepoints and kprobes",
          CAP_SYS_ADMIN, "setns into other network namespaces; mount tracefs",
          CAP_SYS_PTRACE, "read other processes' /proc/PID/fd to name a listener's process",
          CAP_DAC_READ_SEARCH, "read tracefs and other users' /proc files");

  /**
   * Capabilities doctor reports but the agent does without (the systemd unit does not grant them), with
   * what they would add: their absence is not a fault.
   */
  public static final Map<Capability, String> OPTIONAL =
      orderedMap(
          CAP_NET_ADMIN, "not needed: NETLINK_SOCK_DIAG reads every namespace's listeners without it, and bpftrace "
              + "loads only tracing programs",
          CAP_SYS_RESOURCE, "not needed where RLIMIT_MEMLOCK is unlimited (the unit's LimitMEMLOCK=infinity) or the "
              + "kernel is 5.11+; raises RLIMIT_MEMLOCK for BPF maps otherwise");

  /** The bit number of this capability in a capability mask. */
  public int bit() {
    return ordinal();
  }

  /** The capability with this bit number, if this build knows it. */
  public static Optional<Capability> ofBit(int bit) {
    Capability[] all = values();
    return bit >= 0 && bit < all.length ? Optional.of(all[bit]) : Optional.empty();
  }

  /** Parses a hex mask as in {@code CapEff:} of /proc/PID/status. */
  public static long parseMask(String hex) {
    return Long.parseUnsignedLong(hex.strip(), 16);
  }

  /** The capabilities set in {@code mask}. */
  public static Set<Capability> inMask(long mask) {
    Set<Capability> set = EnumSet.noneOf(Capability.class);
    for (Capability c : values()) {
      if ((mask & (1L << c.bit())) != 0) {
        set.add(c);
      }
    }
    return set;
  }

  /** The names of the bits set in {@code mask}, "cap_N" for bits newer than this build knows. */
  public static List<String> namesInMask(long mask) {
    List<String> names = new ArrayList<>();
    for (int bit = 0; bit < Long.SIZE; bit++) {
      if ((mask & (1L << bit)) != 0) {
        int b = bit;
        names.add(ofBit(bit).map(Enum::name).orElseGet(() -> "cap_" + b));
      }
    }
    return names;
  }

  /** The {@code CapEff:} value in the text of /proc/PID/status. */
  public static Optional<Long> effectiveMask(String procStatus) {
    return procStatus
        .lines()
        .filter(line -> line.startsWith("CapEff:"))
        .findFirst()
        .map(line -> parseMask(line.substring("CapEff:".length())));
  }

  private static Map<Capability, String> orderedMap(Object... pairs) {
    LinkedHashMap<Capability, String> map = new LinkedHashMap<>();
    for (int i = 0; i < pairs.length; i += 2) {
      map.put((Capability) pairs[i], (String) pairs[i + 1]);
    }
    return Collections.unmodifiableMap(map);
  }
}
