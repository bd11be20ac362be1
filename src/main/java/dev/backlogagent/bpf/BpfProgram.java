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
   * clash by contract (each program prefixes its own). Probes of several concerns on one tracepoint become
   * one probe (see {@link #mergeSharedTracepoints}): the kernel then runs one BPF program per event there,
   * not one per concern.
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
    List<String> texts = new ArrayList<>();
    for (BpfProgram program : programs) {
      concerns.addAll(program.concerns());
      String rest = program.source();
      rest = extractProbe(rest, "BEGIN", begin);
      rest = extractProbe(rest, "END", end);
      StringBuilder kept = new StringBuilder();
      for (String line : rest.split("\n", -1)) {
        String trimmed = line.strip();
        if (trimmed.startsWith("#include")) {
          includes.add(trimmed);
        } else if (trimmed.startsWith("#") && !trimmed.startsWith("#!")) {
          // bpftrace 0.17 takes preprocessor lines only before the first probe.
          directives.append(line).append('\n');
        } else if (!trimmed.startsWith("#!")) {
          kept.append(line).append('\n');
        }
      }
      texts.add(kept.toString());
    }
    String merged = mergeSharedTracepoints(programs, texts);
    for (int i = 0; i < programs.size(); i++) {
      body.append("\n// ---- ").append(programs.get(i).name()).append(" ----\n").append(texts.get(i));
    }
    body.append(merged);
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

  private static final java.util.regex.Pattern TRACEPOINT = java.util.regex.Pattern.compile("tracepoint:\\w+:\\w+");
  private static final java.util.regex.Pattern VARIABLE = java.util.regex.Pattern.compile("\\$[A-Za-z_]\\w*");

  /** A top-level probe of a program's text: where it is, its one tracepoint (null for any other), predicate, body. */
  record Probe(int start, int end, String tracepoint, String predicate, String body) {
    Set<String> variables() {
      Set<String> names = new java.util.HashSet<>();
      VARIABLE.matcher((predicate == null ? "" : predicate) + " " + body).results().forEach(m -> names.add(m.group()));
      return names;
    }
  }

  /**
   * Cuts the probes that several programs have on one tracepoint out of {@code texts} and returns them as
   * one probe per tracepoint: each concern's predicate becomes an {@code if} around its body, in program
   * order. Every BPF program attached to a tracepoint costs its own run per event (about 60 ns here,
   * 6-7 state changes per connection on inet_sock_set_state). Probes whose bodies share a variable name
   * are left apart: bpftrace 0.17 scopes variables to the whole probe, and their types might clash.
   */
  static String mergeSharedTracepoints(List<BpfProgram> programs, List<String> texts) {
    java.util.Map<String, List<int[]>> byTracepoint = new java.util.LinkedHashMap<>();
    List<List<Probe>> probes = new ArrayList<>();
    for (int p = 0; p < texts.size(); p++) {
      List<Probe> found = probes(texts.get(p));
      probes.add(found);
      for (int k = 0; k < found.size(); k++) {
        if (found.get(k).tracepoint() != null) {
          byTracepoint.computeIfAbsent(found.get(k).tracepoint(), t -> new ArrayList<>()).add(new int[] {p, k});
        }
      }
    }
    StringBuilder merged = new StringBuilder();
    List<List<Probe>> cut = new ArrayList<>();
    texts.forEach(t -> cut.add(new ArrayList<>()));
    for (java.util.Map.Entry<String, List<int[]>> shared : byTracepoint.entrySet()) {
      List<int[]> at = shared.getValue();
      if (at.stream().map(pk -> pk[0]).distinct().count() < 2) {
        continue;
      }
      Set<String> seen = new java.util.HashSet<>();
      boolean disjoint = true;
      for (int[] pk : at) {
        for (String v : probes.get(pk[0]).get(pk[1]).variables()) {
          disjoint &= seen.add(v);
        }
      }
      if (!disjoint) {
        continue;
      }
      Set<String> names = new LinkedHashSet<>();
      StringBuilder one = new StringBuilder();
      for (int[] pk : at) {
        Probe probe = probes.get(pk[0]).get(pk[1]);
        names.add(programs.get(pk[0]).name());
        cut.get(pk[0]).add(probe);
        if (probe.predicate() == null) {
          one.append(probe.body()).append('\n');
        } else {
          one.append("  if (").append(probe.predicate()).append(") {").append(probe.body()).append("}\n");
        }
      }
      merged.append("\n// ---- ").append(String.join("+", names)).append(" ----\n")
          .append(shared.getKey()).append("\n{\n").append(one).append("}\n");
    }
    for (int p = 0; p < texts.size(); p++) {
      String text = texts.get(p);
      List<Probe> remove = new ArrayList<>(cut.get(p));
      remove.sort((a, b) -> Integer.compare(b.start(), a.start()));
      for (Probe probe : remove) {
        text = text.substring(0, probe.start()) + text.substring(probe.end());
      }
      texts.set(p, text);
    }
    return merged.toString();
  }

  /** The top-level probes of {@code text} (no BEGIN or END left in it), comments between them skipped. */
  static List<Probe> probes(String text) {
    List<Probe> found = new ArrayList<>();
    int i = 0;
    int n = text.length();
    while (i < n) {
      char c = text.charAt(i);
      if (Character.isWhitespace(c)) {
        i++;
      } else if (c == '/' && i + 1 < n && text.charAt(i + 1) == '*') {
        int close = text.indexOf("*/", i + 2);
        i = close < 0 ? n : close + 2;
      } else if (c == '/' && i + 1 < n && text.charAt(i + 1) == '/') {
        int newline = text.indexOf('\n', i);
        i = newline < 0 ? n : newline;
      } else {
        int open = text.indexOf('{', i);
        if (open < 0) {
          break;
        }
        int close = matchingBrace(text, open);
        String header = text.substring(i, open).strip();
        String attach = header;
        String predicate = null;
        int slash = header.indexOf('/');
        if (slash >= 0) {
          attach = header.substring(0, slash).strip();
          String p = header.substring(slash).strip();
          predicate = p.length() >= 2 && p.endsWith("/") ? p.substring(1, p.length() - 1).strip() : null;
          if (predicate == null) {
            attach = ""; // not a predicate we understand: never merged
          }
        }
        String tracepoint = TRACEPOINT.matcher(attach).matches() ? attach : null;
        found.add(new Probe(i, close + 1, tracepoint, predicate, text.substring(open + 1, close)));
        i = close + 1;
      }
    }
    return found;
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
