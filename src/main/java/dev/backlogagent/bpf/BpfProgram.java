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
   * Loads a concern's program {@code variant} from {@code directory} when given (an installed agent's
   * programs), else from the jar.
   */
  public static BpfProgram load(Concern concern, ProgramVariant variant, Path directory) throws IOException {
    String text;
    if (directory != null) {
      text = Files.readString(directory.resolve(variant.file()), StandardCharsets.UTF_8);
    } else {
      try (InputStream in = BpfProgram.class.getResourceAsStream("/bpf/" + variant.file())) {
        if (in == null) {
          throw new IOException("the jar holds no bpf/" + variant.file());
        }
        text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
      }
    }
    return new BpfProgram(List.of(concern), text);
  }

  /**
   * One program that runs several concerns in a single bpftrace process (fewer processes, one BTF load,
   * one compile). #include lines move to the top, once each, and other preprocessor lines after them;
   * bpftrace 0.17 allows a single BEGIN and a
   * single END probe, so their bodies are merged, each in its own block; the concerns' map names do not
   * clash by contract (each program prefixes its own).
   */
  public static BpfProgram combine(List<BpfProgram> programs) {
    if (programs.size() == 1) {
      return programs.get(0);
    }
    Set<String> includes = new LinkedHashSet<>();
    StringBuilder body = new StringBuilder();
    StringBuilder directives = new StringBuilder();
    StringBuilder begin = new StringBuilder();
    StringBuilder end = new StringBuilder();
    List<Concern> concerns = new ArrayList<>();
    for (BpfProgram program : programs) {
      concerns.addAll(program.concerns());
      body.append("\n// ---- ").append(program.name()).append(" ----\n");
      String rest = program.source();
      rest = extractProbe(rest, "BEGIN", begin);
      rest = extractProbe(rest, "END", end);
      for (String line : rest.split("\n", -1)) {
        String trimmed = line.strip();
        if (trimmed.startsWith("#include")) {
          includes.add(trimmed);
        } else if (trimmed.startsWith("#") && !trimmed.startsWith("#!")) {
          // bpftrace 0.17 takes preprocessor lines only before the first probe.
          directives.append(line).append('\n');
        } else if (!trimmed.startsWith("#!")) {
          body.append(line).append('\n');
        }
      }
    }
    StringBuilder text = new StringBuilder();
    includes.forEach(i -> text.append(i).append('\n'));
    text.append(directives);
    if (begin.length() > 0) {
      text.append("BEGIN\n{\n").append(begin).append("}\n");
    }
    text.append(body);
    if (end.length() > 0) {
      text.append("\nEND\n{\n").append(end).append("}\n");
    }
    return new BpfProgram(List.copyOf(concerns), text.toString());
  }

  /**
   * Removes the top-level probe {@code name} (BEGIN or END) from {@code source}, appending its body to
   * {@code into} (bpftrace 0.17 has no nested blocks; our BEGIN and END bodies use no variables). Comments and strings are skipped
   * when matching braces.
   */
  static String extractProbe(String source, String name, StringBuilder into) {
    int depth = 0;
    int i = 0;
    int n = source.length();
    while (i < n) {
      char c = source.charAt(i);
      if (c == '/' && i + 1 < n && source.charAt(i + 1) == '*') {
        int close = source.indexOf("*/", i + 2);
        i = close < 0 ? n : close + 2;
        continue;
      }
      if (c == '/' && i + 1 < n && source.charAt(i + 1) == '/') {
        int newline = source.indexOf('\n', i);
        i = newline < 0 ? n : newline;
        continue;
      }
      if (c == '"') {
        i = skipString(source, i);
        continue;
      }
      if (c == '{') {
        depth++;
      } else if (c == '}') {
        depth--;
      } else if (depth == 0 && source.startsWith(name, i) && atWordStart(source, i)
          && (i + name.length() >= n || !Character.isLetterOrDigit(source.charAt(i + name.length())))) {
        int open = source.indexOf('{', i);
        if (open >= 0 && source.substring(i + name.length(), open).isBlank()) {
          int close = matchingBrace(source, open);
          into.append(source, open + 1, close).append('\n');
          return source.substring(0, i) + source.substring(close + 1);
        }
      }
      i++;
    }
    return source;
  }

  private static boolean atWordStart(String s, int i) {
    return i == 0 || Character.isWhitespace(s.charAt(i - 1));
  }

  private static int skipString(String s, int i) {
    int j = i + 1;
    while (j < s.length() && s.charAt(j) != '"') {
      j += s.charAt(j) == '\\' ? 2 : 1;
    }
    return j + 1;
  }

  private static int matchingBrace(String s, int open) {
    int depth = 0;
    int i = open;
    while (i < s.length()) {
      char c = s.charAt(i);
      if (c == '"') {
        i = skipString(s, i);
        continue;
      }
      if (c == '/' && i + 1 < s.length() && s.charAt(i + 1) == '/') {
        int newline = s.indexOf('\n', i);
        i = newline < 0 ? s.length() : newline;
        continue;
      }
      if (c == '{') {
        depth++;
      } else if (c == '}' && --depth == 0) {
        return i;
      }
      i++;
    }
    throw new IllegalArgumentException("unbalanced braces in a BPF program");
  }
}
