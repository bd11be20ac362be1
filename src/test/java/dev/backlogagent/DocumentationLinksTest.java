package dev.backlogagent;

import static org.assertj.core.api.Assertions.assertThat;

import dev.backlogagent.cli.BacklogAgent;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** README and docs/ are read by people who click: every relative link must land on a file (and heading) that exists. */
class DocumentationLinksTest {
  private static final Pattern LINK = Pattern.compile("\\]\\(([^)\\s]+)\\)");
  private static final Pattern HEADING = Pattern.compile("^#{1,6}\\s+(.*)$", Pattern.MULTILINE);
  /** A repository path as help texts name them: docs/x.md, bpf/README.md, agent/config.yaml, README.md. */
  private static final Pattern REPO_PATH =
      Pattern.compile("(?<![\\w/.-])((?:docs|bpf|agent|systemd)/[\\w./-]*\\w|[\\w-]+\\.md)");

  @Test
  void everyRelativeLinkInTheReadmeAndDocsResolves() throws IOException {
    List<Path> pages = documentationPages();
    assertThat(pages).contains(Path.of("README.md"), Path.of("docs/doctor.md"));
    List<String> broken = new ArrayList<>();
    for (Path page : pages) {
      String text = Files.readString(page);
      Matcher m = LINK.matcher(text);
      while (m.find()) {
        String target = m.group(1);
        if (target.matches("^[a-z][a-z0-9+.-]*:.*")) {
          continue; // http:, https:, mailto: are not files of this repository
        }
        String file = target.contains("#") ? target.substring(0, target.indexOf('#')) : target;
        String anchor = target.contains("#") ? target.substring(target.indexOf('#') + 1) : null;
        Path resolved = file.isEmpty() ? page : page.toAbsolutePath().getParent().resolve(file).normalize();
        if (!Files.exists(resolved)) {
          broken.add(page + ": " + target + " (no file " + resolved + ")");
        } else if (anchor != null && !anchors(resolved).contains(anchor)) {
          broken.add(page + ": " + target + " (no heading #" + anchor + " in " + file + ")");
        }
      }
    }
    assertThat(broken).isEmpty();
  }

  @Test
  void everyFileTheHelpTextsNameExists() {
    String help = helpOfEveryCommand();
    assertThat(help).contains("Usage: backlog-agent doctor", "Usage: backlog-agent run");
    Set<String> named = new TreeSet<>();
    Matcher m = REPO_PATH.matcher(help);
    while (m.find()) {
      named.add(m.group(1));
    }
    assertThat(named).as("the help texts point at the reference").contains("docs/doctor.md", "docs/trace.md");
    assertThat(named.stream().filter(p -> !Files.exists(Path.of(p))).collect(Collectors.toList()))
        .as("files named in --help texts that do not exist")
        .isEmpty();
    // A bare "README" is a pointer to no particular file.
    assertThat(help.replace("README.md", "")).doesNotContain("README");
  }

  private static String helpOfEveryCommand() {
    StringBuilder all = new StringBuilder();
    for (String command : List.of("doctor", "listeners", "trace", "watch", "run")) {
      all.append(help(command, "--help"));
    }
    all.append(help("--help"));
    return all.toString();
  }

  private static String help(String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    int code = BacklogAgent.execute(new PrintWriter(out), new PrintWriter(err), args);
    assertThat(code).as("exit of %s: %s", String.join(" ", args), err).isZero();
    return out.toString();
  }

  private static List<Path> documentationPages() throws IOException {
    List<Path> pages = new ArrayList<>(List.of(Path.of("README.md")));
    try (Stream<Path> docs = Files.list(Path.of("docs"))) {
      docs.filter(p -> p.toString().endsWith(".md")).sorted().forEach(pages::add);
    }
    pages.add(Path.of("bpf/README.md"));
    return pages;
  }

  /** GitHub's anchors: the heading lower-cased, punctuation but '-' and '_' removed, spaces to '-'. */
  static Set<String> anchors(Path markdown) throws IOException {
    Set<String> anchors = new TreeSet<>();
    if (!markdown.toString().endsWith(".md")) {
      return anchors;
    }
    Matcher m = HEADING.matcher(Files.readString(markdown));
    while (m.find()) {
      anchors.add(m.group(1).strip().toLowerCase(Locale.ROOT).replaceAll("[^\\p{L}\\p{N} _-]", "").replace(' ', '-'));
    }
    return anchors;
  }
}
