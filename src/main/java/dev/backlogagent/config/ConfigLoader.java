package dev.backlogagent.config;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.MapperFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.exc.InvalidFormatException;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import com.fasterxml.jackson.databind.exc.ValueInstantiationException;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.module.SimpleModule;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLParser;
import dev.backlogagent.kernel.Tier;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * Reads the YAML configuration strictly: an unknown key, a value of the wrong type or out of range, a
 * duplicated key, or a file others could write while the agent runs as root, each stops the start with
 * one line naming the file, the key and what is allowed.
 */
public final class ConfigLoader {
  public static final Path DEFAULT_FILE = Path.of("/etc/backlog-agent/config.yaml");
  /** The largest configuration read: the example is 3 KB; more is not a configuration (e.g. /dev/zero). */
  public static final int MAX_BYTES = 1 << 20;
  /** The most YAML nodes a configuration may have once its aliases are resolved (a bound for "billion laughs"). */
  static final int MAX_NODES = 100_000;

  private final ObjectMapper mapper;
  private final FileTrust trust;

  public ConfigLoader(FileTrust trust) {
    this.trust = trust;
    SimpleModule values = new SimpleModule("values");
    values.addDeserializer(Duration.class, new Durations.Deserializer());
    values.addDeserializer(Tier.class, new ConfiguredTier.Deserializer());
    this.mapper = JsonMapper.builder(new YAMLFactory())
        .propertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
        .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
        .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
        .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
        .disable(MapperFeature.ALLOW_COERCION_OF_SCALARS)
        .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
        .addModule(values)
        .build();
  }

  public static ConfigLoader forThisProcess() {
    return new ConfigLoader(FileTrust.forThisProcess());
  }

  /**
   * Loads {@code file}; with {@code file} null, the default file if it exists, else every default.
   */
  public AgentConfig load(Path file) throws ConfigException {
    Path chosen = file == null ? DEFAULT_FILE : file;
    if (!Files.exists(chosen)) {
      if (file == null) {
        return AgentConfig.defaults(); // no configuration needed
      }
      throw new ConfigException(chosen + ": no such file");
    }
    // Checked before it is opened: opening a FIFO blocks until someone writes, a device never ends.
    if (!Files.isRegularFile(chosen)) {
      throw new ConfigException(chosen + ": not a regular file (" + kind(chosen) + "); the configuration must be a file");
    }
    trust.check(chosen, "config file");
    String text = readBounded(chosen);
    AgentConfig config = parse(chosen.toString(), text);
    if (config.programs() != null) {
      checkPrograms(config.programs());
    }
    if (config.bpftrace() != null && !(Files.isRegularFile(config.bpftrace()) && Files.isExecutable(config.bpftrace()))) {
      throw new ConfigException(chosen + ": key 'bpftrace': " + config.bpftrace() + " is not an executable file");
    }
    if (config.bpftrace() != null) {
      try {
        trust.checkExecutable(config.bpftrace(), "bpftrace executable");
      } catch (ConfigException e) {
        throw new ConfigException(chosen + ": key 'bpftrace': " + e.getMessage());
      }
    }
    if (config.btf() != null && !(Files.isRegularFile(config.btf()) && Files.isReadable(config.btf()))) {
      throw new ConfigException(chosen + ": key 'btf': " + config.btf() + " is not a readable file");
    }
    return config;
  }

  private static String readBounded(Path file) throws ConfigException {
    byte[] bytes;
    try (InputStream in = Files.newInputStream(file)) {
      bytes = in.readNBytes(MAX_BYTES + 1);
    } catch (IOException e) {
      throw new ConfigException(file + ": cannot read: " + e.getMessage());
    }
    if (bytes.length > MAX_BYTES) {
      throw new ConfigException(file + ": larger than " + (MAX_BYTES >> 10) + " KiB; a configuration is a few KB");
    }
    return new String(bytes, StandardCharsets.UTF_8);
  }

  private static String kind(Path p) {
    if (Files.isDirectory(p)) {
      return "a directory";
    }
    try {
      Object mode = Files.getAttribute(p, "unix:mode");
      if (mode instanceof Integer m) {
        return switch (m & 0170000) {
          case 0010000 -> "a FIFO";
          case 0020000 -> "a character device";
          case 0060000 -> "a block device";
          case 0140000 -> "a socket";
          default -> "not a plain file";
        };
      }
    } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
      // fall through
    }
    return "not a plain file";
  }

  /** Parses YAML text; {@code source} names it in messages. */
  public AgentConfig parse(String source, String text) throws ConfigException {
    if (text.isBlank()) {
      return AgentConfig.defaults();
    }
    JsonNode tree;
    try {
      tree = readTree(text);
    } catch (JsonProcessingException e) {
      String where = e.getLocation() == null ? "" : " at line " + e.getLocation().getLineNr();
      throw new ConfigException(source + ": not valid YAML" + where + ": " + oneLine(e.getOriginalMessage()));
    } catch (IOException e) {
      throw new ConfigException(source + ": cannot read: " + oneLine(e.getMessage()));
    }
    if (tree == null || tree.isMissingNode() || tree.isNull()) {
      return AgentConfig.defaults(); // only comments
    }
    try {
      AgentConfig config = mapper.treeToValue(tree, AgentConfig.class);
      return config == null ? AgentConfig.defaults() : config;
    } catch (UnrecognizedPropertyException e) {
      List<String> allowed = e.getKnownPropertyIds().stream().map(Object::toString).sorted().toList();
      throw new ConfigException(source + ": unknown key '" + path(e) + "'; allowed here: " + String.join(", ", allowed));
    } catch (ValueInstantiationException e) {
      if (e.getCause() instanceof ConfigValueException bad) {
        String section = path(e);
        String key = section.isEmpty() ? bad.key() : section + "." + bad.key();
        throw new ConfigException(source + ": key '" + key + "': " + bad.getMessage());
      }
      throw new ConfigException(source + ": " + oneLine(e.getOriginalMessage()));
    } catch (InvalidFormatException e) {
      throw new ConfigException(source + ": key '" + path(e) + "': " + describe(e));
    } catch (MismatchedInputException e) {
      throw new ConfigException(source + ": key '" + path(e) + "': expected " + expected(e.getTargetType()));
    } catch (JsonMappingException e) {
      throw new ConfigException(source + ": key '" + path(e) + "': " + oneLine(e.getOriginalMessage()));
    } catch (JsonProcessingException e) {
      throw new ConfigException(source + ": " + oneLine(e.getOriginalMessage()));
    }
  }

  /**
   * The YAML as a tree, with aliases resolved: Jackson's own tree reader takes {@code *name} as the string
   * "name", so {@code quiet_period: *m} would read as 'm'. An anchor ({@code &name}) names the value it is on;
   * an alias is a copy of it. An alias to an unknown anchor, and more than {@link #MAX_NODES} nodes once
   * resolved, are refused.
   */
  private JsonNode readTree(String text) throws IOException {
    try (YAMLParser parser = (YAMLParser) mapper.getFactory().createParser(text)) {
      if (parser.nextToken() == null) {
        return null;
      }
      int[] nodes = {0};
      JsonNode tree = node(parser, anchorsByOffset(text), new HashMap<>(), nodes);
      if (parser.nextToken() != null) {
        throw new JsonMappingException(parser, "more than one YAML document", parser.currentLocation());
      }
      return tree;
    }
  }

  /**
   * Where each anchor is, by character offset: Jackson's parser loses the anchor of a scalar that is a
   * mapping's value ({@code interval: &m 30s}), so they are read from SnakeYAML's events, whose marks are
   * the same ones Jackson reports as token locations.
   */
  private static Map<Long, String> anchorsByOffset(String text) {
    Map<Long, String> anchors = new HashMap<>();
    try {
      for (org.yaml.snakeyaml.events.Event e : new org.yaml.snakeyaml.Yaml().parse(new java.io.StringReader(text))) {
        if (e instanceof org.yaml.snakeyaml.events.NodeEvent n && !(e instanceof org.yaml.snakeyaml.events.AliasEvent)
            && n.getAnchor() != null) {
          anchors.put((long) e.getStartMark().getIndex(), n.getAnchor());
        }
      }
    } catch (RuntimeException e) {
      // Broken YAML: Jackson's pass reports it, with its line.
    }
    return anchors;
  }

  private static JsonNode node(YAMLParser p, Map<Long, String> anchorsAt, Map<String, JsonNode> anchors, int[] nodes)
      throws IOException {
    if (p.isCurrentAlias()) {
      JsonNode anchored = anchors.get(p.getText());
      if (anchored == null) {
        throw new JsonMappingException(p, "alias *" + p.getText() + " names no anchor (&" + p.getText() + ") before it",
            p.currentLocation());
      }
      count(p, nodes, deepSize(anchored, MAX_NODES + 1));
      return anchored.deepCopy();
    }
    String anchor = anchorsAt.getOrDefault(p.currentTokenLocation().getCharOffset(), p.getCurrentAnchor());
    count(p, nodes, 1);
    JsonNodeFactory f = JsonNodeFactory.instance;
    JsonNode node;
    JsonToken t = p.currentToken();
    switch (t) {
      case START_OBJECT -> {
        ObjectNode o = f.objectNode();
        while (p.nextToken() == JsonToken.FIELD_NAME) {
          String name = p.currentName();
          p.nextToken();
          JsonNode value = node(p, anchorsAt, anchors, nodes);
          if (o.has(name)) {
            throw new JsonMappingException(p, "duplicate key '" + name + "'", p.currentLocation());
          }
          o.set(name, value);
        }
        node = o;
      }
      case START_ARRAY -> {
        ArrayNode a = f.arrayNode();
        while (p.nextToken() != JsonToken.END_ARRAY) {
          a.add(node(p, anchorsAt, anchors, nodes));
        }
        node = a;
      }
      case VALUE_STRING -> node = f.textNode(p.getText());
      case VALUE_NUMBER_INT -> node = switch (p.getNumberType()) {
        case INT -> f.numberNode(p.getIntValue());
        case LONG -> f.numberNode(p.getLongValue());
        default -> f.numberNode(p.getBigIntegerValue());
      };
      case VALUE_NUMBER_FLOAT -> node = f.numberNode(p.getDoubleValue());
      case VALUE_TRUE, VALUE_FALSE -> node = f.booleanNode(t == JsonToken.VALUE_TRUE);
      case VALUE_NULL -> node = f.nullNode();
      default -> throw new JsonMappingException(p, "unexpected YAML token " + t, p.currentLocation());
    }
    if (anchor != null) {
      anchors.put(anchor, node);
    }
    return node;
  }

  private static int deepSize(JsonNode n, int stopAt) {
    int size = 1;
    for (JsonNode child : n) {
      if (size >= stopAt) {
        break;
      }
      size += deepSize(child, stopAt - size);
    }
    return size;
  }

  private static void count(YAMLParser p, int[] nodes, int more) throws JsonMappingException {
    nodes[0] += more;
    if (nodes[0] > MAX_NODES) {
      throw new JsonMappingException(p, "more than " + MAX_NODES + " values once aliases are resolved", p.currentLocation());
    }
  }

  private void checkPrograms(Path dir) throws ConfigException {
    if (!Files.isDirectory(dir)) {
      throw new ConfigException("key 'programs': " + dir + " is not a directory");
    }
    trust.check(dir, "program directory");
    try (var files = Files.walk(dir)) {
      for (Path p : files.filter(f -> f.toString().endsWith(".bt")).toList()) {
        trust.check(p, "program file");
      }
    } catch (IOException e) {
      throw new ConfigException("key 'programs': cannot read " + dir + ": " + e.getMessage());
    }
  }

  private static String path(JsonMappingException e) {
    return e.getPath().stream()
        .map(r -> r.getFieldName() != null ? r.getFieldName() : "[" + r.getIndex() + "]")
        .collect(Collectors.joining("."))
        .replace(".[", "[");
  }

  private static String describe(InvalidFormatException e) {
    String got = String.valueOf(e.getValue());
    if (e.getTargetType() == Duration.class || e.getTargetType() == Tier.class) {
      return e.getOriginalMessage(); // the deserializer's own sentence
    }
    return "expected " + expected(e.getTargetType()) + ", got '" + got + "'";
  }

  private static String expected(Class<?> type) {
    if (type == null) {
      return "another kind of value";
    }
    if (type == Integer.class || type == int.class || type == Long.class) {
      return "a whole number";
    }
    if (type == Boolean.class || type == boolean.class) {
      return "true or false";
    }
    if (type == Duration.class) {
      return "a duration such as 500ms, 10s, 5m";
    }
    if (type == Tier.class) {
      return "one of " + ConfiguredTier.allowed();
    }
    if (type == String.class || type == Path.class) {
      return "a string";
    }
    if (List.class.isAssignableFrom(type)) {
      return "a list";
    }
    if (Map.class.isAssignableFrom(type) || type.isRecord()) {
      return "a mapping of keys to values";
    }
    return "a " + type.getSimpleName();
  }

  private static String oneLine(String message) {
    if (message == null) {
      return "invalid";
    }
    int nl = message.indexOf('\n');
    return (nl < 0 ? message : message.substring(0, nl)).strip();
  }
}
