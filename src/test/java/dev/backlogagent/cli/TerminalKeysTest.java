package dev.backlogagent.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.backlogagent.cli.TerminalKeys.Key;
import dev.backlogagent.cli.TerminalKeys.Kind;
import java.util.List;
import org.junit.jupiter.api.Test;

/** What terminals send in raw mode, as keys (sequences as xterm, tmux and the Linux console send them). */
class TerminalKeysTest {
  private static List<Kind> kinds(List<Key> keys) {
    return keys.stream().map(Key::kind).toList();
  }

  @Test
  void sequencesAndCharacters() {
    record Case(String input, List<Kind> kinds) {}
    List<Case> cases = List.of(
        new Case("q", List.of(Kind.CHAR)),
        new Case("\033[A\033[B", List.of(Kind.UP, Kind.DOWN)),
        new Case("\033OA\033OB", List.of(Kind.UP, Kind.DOWN)), // application cursor mode (keypad_xmit)
        new Case("\033[5~\033[6~", List.of(Kind.PAGE_UP, Kind.PAGE_DOWN)),
        new Case("\033[H\033[F\033[1~\033[4~", List.of(Kind.HOME, Kind.END, Kind.HOME, Kind.END)),
        new Case("\033[1;5A", List.of(Kind.UP)), // with a modifier
        new Case("\033[C\033[15~x", List.of(Kind.CHAR)), // right arrow and F5 are swallowed whole
        new Case("\r\n\177\b\003", List.of(Kind.ENTER, Kind.ENTER, Kind.BACKSPACE, Kind.BACKSPACE, Kind.INTERRUPT)),
        new Case("\033x", List.of(Kind.ESCAPE, Kind.CHAR)));
    for (Case c : cases) {
      assertThat(kinds(new TerminalKeys().feed(c.input()))).as("%s", c.input().replace("\033", "ESC")).isEqualTo(c.kinds());
    }
  }

  @Test
  void aSequenceSplitAcrossReadsIsCompletedByTheNextOne() {
    TerminalKeys keys = new TerminalKeys();
    assertThat(keys.feed("\033")).isEmpty();
    assertThat(keys.feed("[")).isEmpty();
    assertThat(keys.hasPending()).isTrue();
    assertThat(kinds(keys.feed("6~p"))).containsExactly(Kind.PAGE_DOWN, Kind.CHAR);
    assertThat(keys.hasPending()).isFalse();
  }

  @Test
  void aLoneEscapeIsAKeyOnceNothingFollows() {
    TerminalKeys keys = new TerminalKeys();
    assertThat(keys.feed("\033")).isEmpty();
    assertThat(kinds(keys.flush())).containsExactly(Kind.ESCAPE);
    assertThat(keys.flush()).isEmpty();
    assertThat(keys.feed("n")).containsExactly(new Key(Kind.CHAR, 'n'));
  }
}
