package dev.backlogagent.bpf;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

/** Combining programs into one bpftrace script, as bpftrace 0.17's grammar demands. */
class BpfProgramTest {
  @Test
  void beginAndEndBodiesMergeIntoOneEachAndPreprocessorLinesGoFirst() {
    BpfProgram a = new BpfProgram(List.of(Concern.LISTEN), String.join("\n",
        "#!/usr/bin/env bpftrace",
        "/* END { not this one, it is a comment } */",
        "#include <linux/socket.h>",
        "BEGIN { @a_started = 1; }",
        "tracepoint:x:y { printf(\"END { not a probe }\\n\"); }",
        "END {",
        "  clear(@a);",
        "}", ""));
    BpfProgram b = new BpfProgram(List.of(Concern.SYN_REFUSED), String.join("\n",
        "#include <linux/socket.h>",
        "#ifndef LIMIT",
        "#define LIMIT 0",
        "#endif",
        "kprobe:f { if (1) { @b = count(); } }",
        "END { clear(@b); }", ""));
    String text = BpfProgram.combine(List.of(a, b)).source();
    assertThat(text.indexOf("#include <linux/socket.h>")).isEqualTo(text.lastIndexOf("#include <linux/socket.h>"));
    assertThat(text).doesNotContain("#!/usr/bin/env");
    int firstProbe = text.indexOf("BEGIN");
    assertThat(text.indexOf("#define LIMIT 0")).isBetween(0, firstProbe);
    assertThat(text.indexOf("#endif")).isLessThan(firstProbe);
    // One END probe and one BEGIN probe, each at the start of a line; the other "END {" are a comment and a string.
    assertThat(java.util.regex.Pattern.compile("(?m)^(END|BEGIN)\\s*(\\{|$)").matcher(text).results().map(m -> m.group(1)).toList())
        .containsExactly("BEGIN", "END");
    assertThat(text).containsSubsequence("END", "clear(@a);", "clear(@b);");
    assertThat(text).contains("printf(\"END { not a probe }\\n\")").contains("/* END { not this one, it is a comment } */");
    assertThat(text).contains("kprobe:f { if (1) { @b = count(); } }");
    assertThat(BpfProgram.combine(List.of(a, b)).concerns()).containsExactly(Concern.LISTEN, Concern.SYN_REFUSED);
  }
}
