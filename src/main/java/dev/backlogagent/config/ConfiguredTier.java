package dev.backlogagent.config;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.DeserializationContext;
import com.fasterxml.jackson.databind.deser.std.StdScalarDeserializer;
import com.fasterxml.jackson.databind.exc.InvalidFormatException;
import dev.backlogagent.kernel.Tier;
import java.io.IOException;
import java.util.Arrays;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * The configuration's {@code tier:}: {@code auto} (the tier the host's ladder chooses, read as null) or the
 * label of a tier that observes something ({@link Tier#NONE} is what the ladder finds, never a choice).
 */
final class ConfiguredTier {
  static final String AUTO = "auto";

  private ConfiguredTier() {}

  /** "auto, kprobe, tracepoint, libbpf-tools, ftrace, counters": what the key takes, in the ladder's order. */
  static String allowed() {
    return Stream.concat(Stream.of(AUTO), Arrays.stream(Tier.values()).filter(Tier::canObserve).map(Tier::label))
        .collect(Collectors.joining(", "));
  }

  /** Reads a tier label exactly as written in output (no other spelling), or null for auto. */
  static final class Deserializer extends StdScalarDeserializer<Tier> {
    Deserializer() {
      super(Tier.class);
    }

    @Override
    public Tier deserialize(JsonParser p, DeserializationContext ctxt) throws IOException {
      if (!p.currentToken().isScalarValue()) {
        return (Tier) ctxt.handleUnexpectedToken(Tier.class, p);
      }
      String label = p.getText();
      if (label.equals(AUTO)) {
        return null;
      }
      for (Tier tier : Tier.values()) {
        if (tier.canObserve() && tier.label().equals(label)) {
          return tier;
        }
      }
      throw InvalidFormatException.from(p, "'" + label + "' is not one of " + allowed(), label, Tier.class);
    }
  }
}
