package dev.backlogagent.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.backlogagent.kernel.Tier;
import java.lang.reflect.RecordComponent;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class ConfigLoaderTest {
  private final ConfigLoader loader = new ConfigLoader(new FileTrust(false));

  @Test
  void theExampleConfigIsValidAndSpellsOutTheDefaults() throws Exception {
    AgentConfig example = loader.parse("agent/config.yaml", Files.readString(Path.of("agent/config.yaml")));
    assertThat(example).isEqualTo(AgentConfig.defaults());
  }

  /** Every key the configuration knows is in the example, set or commented out, so that operators find it there. */
  @Test
  void theExampleNamesEveryKey() throws Exception {
    String example = Files.readString(Path.of("agent/config.yaml"));
    List<String> missing = new ArrayList<>();
    collectMissingKeys(AgentConfig.class, example, missing);
    assertThat(missing).as("keys not in agent/config.yaml").isEmpty();
  }

  private static void collectMissingKeys(Class<?> record, String example, List<String> missing) {
    for (RecordComponent component : record.getRecordComponents()) {
      String key = component.getName().replaceAll("([a-z])([A-Z])", "$1_$2").toLowerCase(Locale.ROOT);
      if (!Pattern.compile("(?m)^\\s*(#\\s*)?" + key + ":").matcher(example).find()) {
        missing.add(record.getSimpleName() + "." + key);
      }
      if (component.getType().isRecord()) {
        collectMissingKeys(component.getType(), example, missing);
      }
    }
  }

  @Test
  void aBtfFileThatIsNotThereIsRefusedNamingTheKey() throws Exception {
    Path dir = Files.createTempDirectory("config-btf-");
    Path config = dir.resolve("config.yaml");
    Files.writeString(config, "btf: " + dir.resolve("no-such.btf") + "\n");
    try {
      assertThatThrownBy(() -> loader.load(config))
          .isInstanceOf(ConfigException.class)
          .hasMessage(config + ": key 'btf': " + dir.resolve("no-such.btf") + " is not a readable file");
      Path btf = Files.writeString(dir.resolve("vmlinux.btf"), "x");
      Files.writeString(config, "btf: " + btf + "\n");
      assertThat(loader.load(config).btf()).isEqualTo(btf);
      assertThat(AgentConfig.defaults().withBtf(btf).btf()).isEqualTo(btf);
    } finally {
      try (var files = Files.list(dir)) {
        for (Path f : files.toList()) {
          Files.delete(f);
        }
      }
      Files.delete(dir);
    }
  }

  @Test
  void anEmptyFileMeansEveryDefault() throws Exception {
    AgentConfig c = loader.parse("f", "# nothing\n");
    assertThat(c.interval()).isEqualTo(Duration.ofSeconds(10));
    assertThat(c.exporters().prometheus().port()).isEqualTo(9464);
    assertThat(c.exporters().prometheus().host()).isEqualTo("127.0.0.1");
    assertThat(c.exporters().otlp().hasEndpoint()).isFalse();
    assertThat(c.listeners().max()).isEqualTo(500);
  }

  @Test
  void theTierIsAutoOrOneThatObservesSomethingSpeltAsInOutput() throws Exception {
    assertThat(loader.parse("f", "tier: auto").tier()).as("auto: the ladder chooses").isNull();
    assertThat(AgentConfig.defaults().tier()).isNull();
    for (Tier tier : List.of(Tier.KPROBE, Tier.TRACEPOINT, Tier.LIBBPF_TOOLS, Tier.FTRACE, Tier.COUNTERS)) {
      assertThat(loader.parse("f", "tier: " + tier.label()).tier()).isEqualTo(tier);
    }
  }

  @Test
  void readsEverySection() throws Exception {
    AgentConfig c = loader.parse("f", """
        interval: 500ms
        tier: tracepoint
        states: false
        listeners: {ports: [80, 443], netns: [web, "4026531840"], processes: [nginx], max: 20}
        incidents: {quiet_period: 2m, slow_accept: 1s}
        exporters:
          prometheus: {enabled: false, port: 9999}
          otlp:
            endpoint: http://127.0.0.1:4318
            protocol: http/protobuf
            headers: {authorization: "Bearer x"}
            metric_interval: 5s
        """.replace("500ms", "1s"));
    assertThat(c.interval()).isEqualTo(Duration.ofSeconds(1));
    assertThat(c.tier()).isEqualTo(Tier.TRACEPOINT);
    assertThat(c.states()).isFalse();
    assertThat(c.listeners().ports()).containsExactly(80, 443);
    assertThat(c.listeners().netns()).containsExactly("web", "4026531840");
    assertThat(c.incidents().quietPeriod()).isEqualTo(Duration.ofMinutes(2));
    assertThat(c.exporters().prometheus().enabled()).isFalse();
    assertThat(c.exporters().otlp().protocol()).isEqualTo("http/protobuf");
    assertThat(c.exporters().otlp().headers()).isEqualTo(Map.of("authorization", "Bearer x"));
    assertThat(c.exporters().otlp().metricInterval()).isEqualTo(Duration.ofSeconds(5));
  }

  /** The bad-configuration matrix: each is refused with one line that names the key and what is allowed. */
  @ParameterizedTest
  @CsvSource(delimiter = '|', value = {
      "intervall: 10s                       | unknown key 'intervall'; allowed here: attach_timeout, bpftrace, btf, exporters, incidents, interval, listeners, programs, state_file, states, summary, tier",
      "listeners: {prots: [80]}             | unknown key 'listeners.prots'; allowed here: max, netns, ports, processes",
      "interval: 10 parsecs                 | key 'interval': '10 parsecs' is not a duration (examples: 500ms, 10s, 5m, 1h)",
      "interval: 0s                         | key 'interval': must be between 1s and 1h, got 0s",
      "tier: fast                           | key 'tier': 'fast' is not one of auto, kprobe, tracepoint, libbpf-tools, ftrace, counters",
      "tier: none                           | key 'tier': 'none' is not one of auto, kprobe, tracepoint, libbpf-tools, ftrace, counters",
      "tier: [kprobe]                       | key 'tier': expected one of auto, kprobe, tracepoint, libbpf-tools, ftrace, counters",
      "listeners: {max: 0}                  | key 'listeners.max': must be between 1 and 750 (what the agent's heap can export; see docs/hardening.md), got 0",
      "listeners: {max: many}               | key 'listeners.max': expected a whole number",
      "listeners: {ports: [80, 70000]}      | key 'listeners.ports': each port must be between 1 and 65535, got 70000",
      "listeners: {ports: 80}               | key 'listeners.ports': expected a list",
      "listeners: {processes: [averyveryverylongname]} | key 'listeners.processes': a process name is 1 to 15 characters (the kernel's comm), got 'averyveryverylongname'",
      "states: sometimes                    | key 'states': expected true or false",
      "exporters: {otlp: {protocol: thrift}} | key 'exporters.otlp.protocol': 'thrift' is not one of grpc, http/protobuf",
      "exporters: {otlp: {endpoint: collector:4317}} | key 'exporters.otlp.endpoint': must be an http:// or https:// URL, got 'collector:4317'",
      "exporters: {prometheus: {port: 0}}   | key 'exporters.prometheus.port': must be between 1 and 65535, got 0",
      "incidents: {quiet_period: 2d}        | key 'incidents.quiet_period': '2d' is not a duration (examples: 500ms, 10s, 5m, 1h)",
      "exporters: [prometheus]              | key 'exporters': expected a mapping of keys to values",
  })
  void refusesBadConfigurationsNamingTheKey(String yaml, String message) {
    assertThatThrownBy(() -> loader.parse("config.yaml", yaml))
        .isInstanceOf(ConfigException.class)
        .hasMessage("config.yaml: " + message.strip());
  }

  @Test
  void refusesADuplicatedKeyAndBrokenYaml() {
    assertThatThrownBy(() -> loader.parse("c", "interval: 1s\ninterval: 2s\n"))
        .isInstanceOf(ConfigException.class).hasMessageContaining("interval").hasMessageNotContaining("\n");
    assertThatThrownBy(() -> loader.parse("c", "listeners: {ports: [80\n"))
        .isInstanceOf(ConfigException.class).hasMessageStartingWith("c: not valid YAML at line").hasMessageNotContaining("\n");
  }

  @Test
  void aMissingExplicitFileIsAnErrorButAMissingDefaultFileIsNot(@TempDir Path dir) throws Exception {
    assertThatThrownBy(() -> loader.load(dir.resolve("absent.yaml")))
        .isInstanceOf(ConfigException.class).hasMessage(dir.resolve("absent.yaml") + ": no such file");
    if (!Files.exists(ConfigLoader.DEFAULT_FILE)) {
      assertThat(loader.load(null)).isEqualTo(AgentConfig.defaults());
    }
  }

  @Test
  void asRootRefusesAConfigOrProgramsOthersCouldWrite(@TempDir Path dir) throws Exception {
    ConfigLoader asRoot = new ConfigLoader(new FileTrust(true));
    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
    Path config = dir.resolve("config.yaml");
    Files.writeString(config, "interval: 5s\n");
    Files.setPosixFilePermissions(config, PosixFilePermissions.fromString("rw-rw-rw-"));
    boolean root = FileTrust.effectiveUid() == 0;
    if (root) { // the owner check needs the file to be root's, which it is only when the test runs as root
      assertThatThrownBy(() -> asRoot.load(config)).isInstanceOf(ConfigException.class)
          .hasMessage("config file " + config + " is writable by group or others; running as root, the agent refuses it (chmod go-w " + config + ")");
      Files.setPosixFilePermissions(config, PosixFilePermissions.fromString("rw-r--r--"));
      assertThat(asRoot.load(config).interval()).isEqualTo(Duration.ofSeconds(5));

      Path programs = Files.createDirectory(dir.resolve("bpf"));
      Files.setPosixFilePermissions(programs, PosixFilePermissions.fromString("rwxr-xr-x"));
      Path program = Files.writeString(programs.resolve("listen.bt"), "BEGIN {}");
      Files.setPosixFilePermissions(program, PosixFilePermissions.fromString("rw-rw-r--"));
      Files.writeString(config, "programs: " + programs + "\n");
      assertThatThrownBy(() -> asRoot.load(config)).isInstanceOf(ConfigException.class)
          .hasMessageStartingWith("program file " + program + " is writable by group or others");
      Files.setPosixFilePermissions(program, PosixFilePermissions.fromString("rw-r--r--"));
      assertThat(asRoot.load(config).programs()).isEqualTo(programs);
    }
    // Not root: nothing to protect, the same files load.
    Files.setPosixFilePermissions(config, PosixFilePermissions.fromString("rw-rw-rw-"));
    assertThat(new ConfigLoader(new FileTrust(false)).load(config)).isNotNull();
    assertThat(List.of(root, !root)).contains(true);
  }
}
