package dev.backlogagent.bpf;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * The source of one or more concerns' bpftrace programs, ready to run as one process.
 *
 * @param concerns what the program watches
 * @param source the bpftrace text
 */
public record BpfProgram(List<Concern> concerns, String source) {

  /** A short name for logs and thread names: the concerns joined by '+'. */
  public String name() {
    return String.join("+", concerns.stream().map(c -> c.name().toLowerCase(java.util.Locale.ROOT)).toList());
  }

  /**
   * Loads a concern's program from {@code directory} when given (an installed agent's programs), else from
   * the jar.
   */
  public static BpfProgram load(Concern concern, Path directory) throws IOException {
    String text;
    if (directory != null) {
      text = Files.readString(directory.resolve(concern.file()), StandardCharsets.UTF_8);
    } else {
      try (InputStream in = BpfProgram.class.getResourceAsStream("/bpf/" + concern.file())) {
        if (in == null) {
          throw new IOException("the jar holds no bpf/" + concern.file());
        }
        text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
      }
    }
    return new BpfProgram(List.of(concern), text);
  }

  /**
   * One program that runs several concerns in a single bpftrace process (fewer processes, one BTF load,
   * one compile). #include lines move to the top, once each; the concerns' map names do not clash by
   * contract (each program prefixes its own).
   */
  public static BpfProgram combine(List<BpfProgram> programs) {
    if (programs.size() == 1) {
      return programs.get(0);
    }
    Set<String> includes = new LinkedHashSet<>();
    StringBuilder body = new StringBuilder();
    List<Concern> concerns = new ArrayList<>();
    for (BpfProgram program : programs) {
      concerns.addAll(program.concerns());
      body.append("\n// ---- ").append(program.name()).append(" ----\n");
      for (String line : program.source().split("\n", -1)) {
        String trimmed = line.strip();
        if (trimmed.startsWith("#include")) {
          includes.add(trimmed);
        } else if (!trimmed.startsWith("#!")) {
          body.append(line).append('\n');
        }
      }
    }
    StringBuilder text = new StringBuilder();
    includes.forEach(i -> text.append(i).append('\n'));
    text.append(body);
    return new BpfProgram(List.copyOf(concerns), text.toString());
  }
}
