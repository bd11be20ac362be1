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
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
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

  private final ObjectMapper mapper;
  private final FileTrust trust;

  public ConfigLoader(FileTrust trust) {
    this.trust = trust;
    SimpleModule durations = new SimpleModule("durations");
    durations.addDeserializer(Duration.class, new Durations.Deserializer());
    this.mapper = JsonMapper.builder(new YAMLFactory())
        .propertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
        .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
        .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
        .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
        .disable(MapperFeature.ALLOW_COERCION_OF_SCALARS)
        .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
        .addModule(durations)
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
    String text;
    try {
      text = Files.readString(chosen);
    } catch (NoSuchFileException e) {
      if (file == null) {
        return AgentConfig.defaults(); // no configuration needed
      }
      throw new ConfigException(chosen + ": no such file");
    } catch (IOException e) {
      throw new ConfigException(chosen + ": cannot read: " + e.getMessage());
    }
    trust.check(chosen, "config file");
    AgentConfig config = parse(chosen.toString(), text);
    if (config.programs() != null) {
      checkPrograms(config.programs());
    }
    if (config.bpftrace() != null && !Files.isExecutable(config.bpftrace())) {
      throw new ConfigException(chosen + ": key 'bpftrace': " + config.bpftrace() + " is not an executable file");
    }
    if (config.btf() != null && !(Files.isRegularFile(config.btf()) && Files.isReadable(config.btf()))) {
      throw new ConfigException(chosen + ": key 'btf': " + config.btf() + " is not a readable file");
    }
    return config;
  }

  /** Parses YAML text; {@code source} names it in messages. */
  public AgentConfig parse(String source, String text) throws ConfigException {
    if (text.isBlank()) {
      return AgentConfig.defaults();
    }
    JsonNode tree;
    try {
      tree = mapper.readTree(text);
    } catch (JsonProcessingException e) {
      String where = e.getLocation() == null ? "" : " at line " + e.getLocation().getLineNr();
      throw new ConfigException(source + ": not valid YAML" + where + ": " + oneLine(e.getOriginalMessage()));
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
    if (e.getTargetType() == Duration.class) {
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
