package dev.backlogagent.bpf;

import static org.assertj.core.api.Assertions.assertThat;

import dev.backlogagent.kernel.Tier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Each concern's program chosen from a kernel's tracepoint formats, on the recorded formats of the matrix's
 * kernels (src/test/resources/tracepoint-formats/). The real proof that a variant works is its guest cell;
 * this pins the choice.
 */
class ProgramChoiceTest {
  private static final Path FORMATS = Path.of("src/test/resources/tracepoint-formats");

  @TempDir Path dir;

  @ParameterizedTest(name = "{0}, {1} tier, fentry {2}")
  @CsvSource(delimiter = '|', textBlock = """
      # kernel          | tier       | fentry | drops              | resets              | accept_wait                 | syn_refused
      host-6.18.44      | tracepoint | false  | drops.bt           | resets.bt           | acceptwait.bt               | -
      debian13-6.12.117 | kprobe     | true   | drops.bt           | resets.bt           | kprobe/acceptwait-kfunc.bt  | kprobe/synrefused-kfunc.bt
      debian13-6.12.117 | tracepoint | false  | drops.bt           | resets.bt           | acceptwait.bt               | -
      debian12-6.1.0-57 | kprobe     | true   | drops-no-rx-sk.bt  | resets-no-reason.bt | kprobe/acceptwait-kfunc.bt  | kprobe/synrefused-kfunc.bt
      debian12-6.1.0-57 | kprobe     | false  | drops-no-rx-sk.bt  | resets-no-reason.bt | kprobe/acceptwait.bt        | kprobe/synrefused.bt
      debian12-6.1.0-57 | tracepoint | false  | drops-no-rx-sk.bt  | resets-no-reason.bt | acceptwait.bt               | -
      debian11-5.10.0-32| kprobe     | true   | drops-no-reason.bt | resets-no-reason.bt | kprobe/acceptwait-kfunc.bt  | kprobe/synrefused-kfunc.bt
      debian11-5.10.0-32| tracepoint | false  | drops-no-reason.bt | resets-no-reason.bt | acceptwait.bt               | -
      """)
  void eachKernelGetsTheProgramsItsTracepointsFit(String kernel, String tier, boolean fentry, String drops, String resets,
      String acceptWait, String synRefused) {
    Map<Concern, String> chosen = chosen(TracepointFormats.at(FORMATS.resolve(kernel)), Tier.parse(tier), fentry);
    assertThat(chosen).containsEntry(Concern.DROPS, drops).containsEntry(Concern.RESETS, resets)
        .containsEntry(Concern.ACCEPT_WAIT, acceptWait).containsEntry(Concern.SYN_REFUSED, synRefused)
        // The rest read fields every kernel of the matrix has.
        .containsEntry(Concern.LISTEN, "listen.bt").containsEntry(Concern.HANDSHAKES, "handshakes.bt")
        .containsEntry(Concern.SYNACK, "synack.bt").containsEntry(Concern.STATES, "states.bt");
  }

  @Test
  void onDebians61DropsAndResetsRunDegradedAndSayWhatIsLost() {
    Map<Concern, ConcernStatus> status = new LinkedHashMap<>();
    for (ProgramChoice c : ProgramChoice.choose(Tier.TRACEPOINT, false, true, TracepointFormats.at(FORMATS.resolve("debian12-6.1.0-57")))) {
      status.put(c.concern(), ConcernStatus.of(c, null));
    }
    assertThat(status.get(Concern.DROPS).state()).isEqualTo(ConcernStatus.State.DEGRADED);
    assertThat(status.get(Concern.DROPS).line()).startsWith("drops: degraded, runs drops-no-rx-sk.bt: no rx_sk in kfree_skb");
    assertThat(status.get(Concern.RESETS).line()).startsWith("resets: degraded, runs resets-no-reason.bt: no reason in tcp_send_reset");
    assertThat(status.get(Concern.LISTEN).line()).isEqualTo("listen: runs (listen.bt)");
    assertThat(status.get(Concern.SYN_REFUSED).state()).isEqualTo(ConcernStatus.State.CANNOT);
    assertThat(status.get(Concern.SYN_REFUSED).line()).startsWith("syn_refused: cannot: needs the kprobe tier");
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(delimiter = '|', textBlock = """
      host-6.18.44       | drops-no-rx-sk.bt drops-no-reason.bt
      debian12-6.1.0-57  | drops-no-reason.bt
      debian11-5.10.0-32 | ''
      """)
  void theVariantsThatFitTooAreTheFallbacksTriedWhenTheChosenOneDoesNotAttach(String kernel, String fallbacks) {
    ProgramChoice drops = ProgramChoice.choose(Tier.TRACEPOINT, false, false, TracepointFormats.at(FORMATS.resolve(kernel)))
        .stream().filter(c -> c.concern() == Concern.DROPS).findFirst().orElseThrow();
    assertThat(drops.fallbacks()).extracting(ProgramVariant::file)
        .containsExactly(fallbacks.isBlank() ? new String[0] : fallbacks.split(" "));
  }

  @Test
  void aTracepointMissingAltogetherMeansTheConcernCannotRunAndSaysWhichOne() throws Exception {
    // A kernel without tcp_send_reset (before 4.16): every variant needs it.
    copyFormats(FORMATS.resolve("host-6.18.44"), dir);
    Files.delete(dir.resolve("tcp/tcp_send_reset/format"));
    ProgramChoice resets = ProgramChoice.choose(Tier.TRACEPOINT, false, false, TracepointFormats.at(dir)).stream()
        .filter(c -> c.concern() == Concern.RESETS).findFirst().orElseThrow();
    assertThat(resets.runs()).isFalse();
    assertThat(ConcernStatus.of(resets, null).line()).isEqualTo("resets: cannot: this kernel has no tracepoint tcp:tcp_send_reset");
  }

  @Test
  void withoutReadableFormatsTheMainProgramsAreTriedAndTheAttachDecides() {
    Map<Concern, String> chosen = chosen(TracepointFormats.at(dir.resolve("no-tracefs")), Tier.TRACEPOINT, false);
    assertThat(chosen).containsEntry(Concern.DROPS, "drops.bt").containsEntry(Concern.RESETS, "resets.bt");
  }

  @Test
  void statesIsOffUnlessAskedForAndTheCountersTierRunsNoProgram() {
    List<ProgramChoice> choices = ProgramChoice.choose(Tier.TRACEPOINT, false, false, TracepointFormats.at(FORMATS.resolve("host-6.18.44")));
    ProgramChoice states = choices.stream().filter(c -> c.concern() == Concern.STATES).findFirst().orElseThrow();
    assertThat(ConcernStatus.of(states, null).line()).isEqualTo("states: off (not asked for)");
    assertThat(ProgramChoice.choose(Tier.COUNTERS, false, true, TracepointFormats.at(FORMATS.resolve("host-6.18.44"))))
        .allSatisfy(c -> assertThat(ConcernStatus.of(c, null).line()).endsWith("cannot: no BPF at tier counters"));
  }

  @Test
  void aProgramThatDoesNotAttachCannotRunWithBpftracesReason() {
    ProgramChoice listen = ProgramChoice.choose(Tier.TRACEPOINT, false, false, TracepointFormats.at(FORMATS.resolve("host-6.18.44")))
        .get(0);
    assertThat(ConcernStatus.of(listen, "did not attach within 60 s").line())
        .isEqualTo("listen: cannot: listen.bt does not attach: did not attach within 60 s");
  }

  @Test
  void formatFieldsAreReadWithoutTheCommonHeaderAndWithoutArraySizes() throws Exception {
    String format = Files.readString(FORMATS.resolve("host-6.18.44/tcp/tcp_send_reset/format"));
    assertThat(TracepointFormats.parse(format)).containsExactly("skbaddr", "skaddr", "state", "reason", "saddr", "daddr");
  }

  private static Map<Concern, String> chosen(TracepointFormats formats, Tier tier, boolean fentry) {
    return ProgramChoice.choose(tier, fentry, true, formats).stream()
        .collect(Collectors.toMap(ProgramChoice::concern, c -> c.runs() ? c.variant().file() : "-", (a, b) -> a, LinkedHashMap::new));
  }

  static void copyFormats(Path from, Path to) throws Exception {
    try (var files = Files.walk(from)) {
      for (Path f : files.filter(Files::isRegularFile).toList()) {
        Path target = to.resolve(from.relativize(f).toString());
        Files.createDirectories(target.getParent());
        Files.copy(f, target);
      }
    }
  }
}
