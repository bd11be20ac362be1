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

  @Test
  void probesOfSeveralConcernsOnOneTracepointBecomeOneProbeWithEachPredicateAsAnIf() {
    BpfProgram handshakes = new BpfProgram(List.of(Concern.HANDSHAKES), String.join("\n",
        "// a comment { with a brace",
        "tracepoint:sock:inet_sock_set_state",
        "/args->oldstate == 10 && args->newstate == 3/",
        "{",
        "  $sk = (struct sock *)args->skaddr;",
        "  @handshakes[$sk->__sk_common.skc_num] = count();",
        "}",
        "interval:s:$1 { print(@handshakes); clear(@handshakes); }",
        "END {", "  clear(@handshakes);", "}", ""));
    BpfProgram states = new BpfProgram(List.of(Concern.STATES), String.join("\n",
        "tracepoint:sock:inet_sock_set_state",
        "/args->protocol == 6/",
        "{",
        "  @states[args->oldstate, args->newstate] = count();",
        "}",
        "interval:s:$1 { print(@states); clear(@states); }", ""));
    String text = BpfProgram.combine(List.of(handshakes, states)).source();
    assertThat(text.split("tracepoint:sock:inet_sock_set_state", -1)).as(text).hasSize(2);
    assertThat(text).containsSubsequence("// ---- handshakes+states ----", "tracepoint:sock:inet_sock_set_state\n{",
        "if (args->oldstate == 10 && args->newstate == 3) {", "@handshakes[", "if (args->protocol == 6) {", "@states[");
    assertThat(text.split("interval:s:\\$1", -1)).hasSize(3); // other probes stay as they were
  }

  @Test
  void probesThatShareAVariableNameStayApart() {
    BpfProgram a = new BpfProgram(List.of(Concern.HANDSHAKES), "tracepoint:tcp:x { $v = 1; @a = count(); }\n");
    BpfProgram b = new BpfProgram(List.of(Concern.STATES), "tracepoint:tcp:x /args->y/ { $v = \"text\"; @b = count(); }\n");
    String text = BpfProgram.combine(List.of(a, b)).source();
    assertThat(text.split("tracepoint:tcp:x", -1)).hasSize(3);
    assertThat(text).doesNotContain("if (args->y)");
  }
}
