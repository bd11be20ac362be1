package dev.backlogagent.config;

import dev.backlogagent.kernel.Tier;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * The daemon's configuration, as read from YAML (keys in snake_case; every key optional). Each record's
 * compact constructor fills in the defaults and refuses values out of range with a {@link ConfigValueException}
 * naming the key, so that a bad file fails at start, in one line.
 *
 * @param interval how often the inventory is read, BPF maps are flushed and the summary line printed
 * @param tier the tier to run, or null (auto, the default) for the one the host's ladder chooses
 * @param bpftrace the bpftrace binary, or null to search PATH, /usr/sbin and /usr/bin
 * @param btf a BTF file of this kernel for bpftrace (kernels that ship none; BTFHub's files), or null for the
 *     kernel's own, wherever bpftrace finds it or at /sys/kernel/btf/vmlinux
 * @param programs a directory of bpftrace programs to run instead of those packaged in the jar
 * @param stateFile where requested backlogs are kept between runs
 * @param states whether to trace TCP state transitions (the tcp.state.transitions metric)
 * @param summary whether to print one summary line per interval on stdout (what journald keeps)
 * @param attachTimeout the least time a BPF program may take to compile and attach before it counts as
 *     failed; the agent allows more where its kernel probe shows a slow machine
 */
public record AgentConfig(
    Duration interval,
    Tier tier,
    Path bpftrace,
    Path btf,
    Path programs,
    Path stateFile,
    Boolean states,
    Boolean summary,
    Listeners listeners,
    Incidents incidents,
    Exporters exporters,
    Duration attachTimeout) {

  public static final String DEFAULT_STATE_FILE = "/var/lib/backlog-agent/requested-backlogs.json";

  public AgentConfig {
    interval = ConfigValueException.within("interval", interval, Duration.ofSeconds(10), Duration.ofSeconds(1), Duration.ofHours(1));
    stateFile = stateFile == null ? Path.of(DEFAULT_STATE_FILE) : stateFile;
    states = states == null || states;
    summary = summary == null || summary;
    listeners = listeners == null ? new Listeners(null, null, null, null) : listeners;
    incidents = incidents == null ? new Incidents(null, null) : incidents;
    exporters = exporters == null ? new Exporters(null, null) : exporters;
    attachTimeout = ConfigValueException.within("attach_timeout", attachTimeout, Duration.ofSeconds(60), Duration.ofSeconds(5),
        Duration.ofMinutes(30));
  }

  /** Every default: what runs without a config file. */
  public static AgentConfig defaults() {
    return new AgentConfig(null, null, null, null, null, null, null, null, null, null, null, null);
  }

  /** This configuration with another BTF file (the run command's --btf, which wins over the file's key). */
  public AgentConfig withBtf(Path file) {
    return new AgentConfig(interval, tier, bpftrace, file, programs, stateFile, states, summary, listeners, incidents,
        exporters, attachTimeout);
  }

  /**
   * Which listeners the daemon exports; an empty list lets every value through.
   *
   * @param netns namespace inodes, or names under /run/netns
   * @param processes process names (comm, as in /proc/PID/comm)
   * @param max the most listeners exported at once; those over the cap are counted, not exported
   */
  public record Listeners(List<Integer> ports, List<String> netns, List<String> processes, Integer max) {
    /**
     * The highest {@code max} accepted, from the heap an exported listener costs (ExportMemoryBenchmark): a
     * busy listener (both histograms in use) keeps about 10 KB and a Prometheus scrape allocates about 110 KB
     * for it. Under the launcher's 96 MB heap, beside 20 MB standing for the rest of the agent on a host with
     * 10,000 listeners, 750 busy listeners survive uncompressed scrapes and 1000 do not; 7000 quiet ones ended
     * the JVM at the first scrape. See docs/hardening.md.
     */
    public static final int MAX_EXPORTED = 750;

    public Listeners {
      ports = ports == null ? List.of() : List.copyOf(ports);
      for (Integer port : ports) {
        if (port == null || port < 1 || port > 65535) {
          throw new ConfigValueException("ports", "each port must be between 1 and 65535, got " + port);
        }
      }
      netns = netns == null ? List.of() : List.copyOf(netns);
      processes = processes == null ? List.of() : List.copyOf(processes);
      for (String p : processes) {
        if (p == null || p.isEmpty() || p.length() > 15) {
          throw new ConfigValueException("processes", "a process name is 1 to 15 characters (the kernel's comm), got '" + p + "'");
        }
      }
      max = max == null ? 500 : max;
      if (max < 1 || max > MAX_EXPORTED) {
        throw new ConfigValueException("max", "must be between 1 and " + MAX_EXPORTED + " (what the agent's heap can "
            + "export; see docs/hardening.md), got " + max);
      }
    }
  }

  /**
   * Traces: overflow incidents and slow accepts.
   *
   * @param quietPeriod how long a listener must go without drops before its incident span ends
   * @param slowAccept the accept-queue wait from which a connection gets its own span (filtered in the kernel)
   */
  public record Incidents(Duration quietPeriod, Duration slowAccept) {
    public Incidents {
      quietPeriod = ConfigValueException.within("quiet_period", quietPeriod, Duration.ofSeconds(60), Duration.ofSeconds(1), Duration.ofHours(24));
      slowAccept = ConfigValueException.within("slow_accept", slowAccept, Duration.ofMillis(200), Duration.ofMillis(1), Duration.ofHours(1));
    }
  }

  /** Where telemetry goes. */
  public record Exporters(Prometheus prometheus, Otlp otlp) {
    public Exporters {
      prometheus = prometheus == null ? new Prometheus(null, null, null) : prometheus;
      otlp = otlp == null ? new Otlp(null, null, null, null, null, null, null, null, null) : otlp;
    }
  }

  /** The pull endpoint, for a Prometheus server to scrape. */
  public record Prometheus(Boolean enabled, String host, Integer port) {
    public Prometheus {
      enabled = enabled == null || enabled;
      host = host == null ? "127.0.0.1" : host;
      port = port == null ? 9464 : port;
      if (port < 1 || port > 65535) {
        throw new ConfigValueException("port", "must be between 1 and 65535, got " + port);
      }
    }
  }

  /**
   * OTLP push export. Keys left out fall back to the standard OTEL_EXPORTER_OTLP_* variables; export is on
   * when an endpoint is set here or there.
   *
   * @param protocol grpc or http/protobuf
   * @param metricInterval how often metrics are pushed (OTEL_METRIC_EXPORT_INTERVAL)
   * @param compression gzip or none
   * @param certificate trusted CA certificates (PEM) for the collector's TLS certificate
   * @param clientKey the agent's private key (PEM) for mutual TLS
   * @param clientCertificate the agent's certificate (PEM) for mutual TLS
   */
  public record Otlp(
      String endpoint,
      String protocol,
      Map<String, String> headers,
      Duration metricInterval,
      Duration timeout,
      String compression,
      Path certificate,
      Path clientKey,
      Path clientCertificate) {
    static final List<String> PROTOCOLS = List.of("grpc", "http/protobuf");
    static final List<String> COMPRESSIONS = List.of("gzip", "none");

    public Otlp {
      if (endpoint != null && !endpoint.isEmpty() && !endpoint.matches("https?://[^/\\s]+(/\\S*)?")) {
        throw new ConfigValueException("endpoint", "must be an http:// or https:// URL, got '" + endpoint + "'");
      }
      if (protocol != null && !PROTOCOLS.contains(protocol)) {
        throw new ConfigValueException("protocol", "'" + protocol + "' is not one of " + String.join(", ", PROTOCOLS));
      }
      if (compression != null && !COMPRESSIONS.contains(compression)) {
        throw new ConfigValueException("compression", "'" + compression + "' is not one of " + String.join(", ", COMPRESSIONS));
      }
      headers = headers == null ? Map.of() : Map.copyOf(headers);
      metricInterval = metricInterval == null ? null
          : ConfigValueException.within("metric_interval", metricInterval, null, Duration.ofSeconds(1), Duration.ofHours(1));
      timeout = timeout == null ? null
          : ConfigValueException.within("timeout", timeout, null, Duration.ofMillis(100), Duration.ofMinutes(5));
    }

    /** True when this file sets an endpoint (the environment may still set one). */
    public boolean hasEndpoint() {
      return endpoint != null && !endpoint.isEmpty();
    }
  }
}
