package dev.backlogagent.cli;

import java.util.ArrayList;
import java.util.List;

/**
 * Turns what a terminal in raw mode sends into keys: printable characters, Enter, Backspace, Escape,
 * Ctrl-C, and the arrows and page keys as the usual escape sequences (CSI and SS3 forms) send them.
 * Fed a chunk at a time; an escape sequence split across chunks is completed by the next one, and a lone
 * ESC is a key of its own once {@link #flush()} says no more is coming.
 */
final class TerminalKeys {
  enum Kind { CHAR, ENTER, BACKSPACE, ESCAPE, INTERRUPT, UP, DOWN, PAGE_UP, PAGE_DOWN, HOME, END }

  record Key(Kind kind, char ch) {
    static Key of(Kind kind) {
      return new Key(kind, '\0');
    }
  }

  private final StringBuilder pending = new StringBuilder();

  /** The keys completed by {@code input}. */
  List<Key> feed(CharSequence input) {
    pending.append(input);
    List<Key> keys = new ArrayList<>();
    int i = 0;
    while (i < pending.length()) {
      char c = pending.charAt(i);
      if (c == 27) {
        int used = escape(i, keys);
        if (used == 0) {
          break; // an unfinished sequence: wait for the rest
        }
        i += used;
        continue;
      }
      if (c == '\r' || c == '\n') {
        keys.add(Key.of(Kind.ENTER));
      } else if (c == 127 || c == 8) {
        keys.add(Key.of(Kind.BACKSPACE));
      } else if (c == 3) {
        keys.add(Key.of(Kind.INTERRUPT));
      } else if (c >= ' ') {
        keys.add(new Key(Kind.CHAR, c));
      }
      i++;
    }
    pending.delete(0, i);
    return keys;
  }

  /** Whatever is left is a lone Escape (the terminal sent nothing after it in time). */
  List<Key> flush() {
    List<Key> keys = new ArrayList<>();
    if (pending.length() > 0 && pending.charAt(0) == 27) {
      keys.add(Key.of(Kind.ESCAPE));
      pending.deleteCharAt(0);
      keys.addAll(feed(""));
    }
    return keys;
  }

  boolean hasPending() {
    return pending.length() > 0;
  }

  /** Consumes one escape sequence at {@code at}; returns how many characters, or 0 if it is unfinished. */
  private int escape(int at, List<Key> keys) {
    if (at + 1 >= pending.length()) {
      return 0;
    }
    char second = pending.charAt(at + 1);
    if (second != '[' && second != 'O') {
      keys.add(Key.of(Kind.ESCAPE)); // ESC then an ordinary key (Alt+key): the ESC alone
      return 1;
    }
    // CSI/SS3: parameters (digits, ';') then one final character in @..~
    int end = at + 2;
    while (end < pending.length() && (Character.isDigit(pending.charAt(end)) || pending.charAt(end) == ';')) {
      end++;
    }
    if (end >= pending.length()) {
      return 0;
    }
    char last = pending.charAt(end);
    String params = pending.substring(at + 2, end);
    Kind kind = switch (last) {
      case 'A' -> Kind.UP;
      case 'B' -> Kind.DOWN;
      case 'H' -> Kind.HOME;
      case 'F' -> Kind.END;
      case '~' -> switch (params) {
        case "5" -> Kind.PAGE_UP;
        case "6" -> Kind.PAGE_DOWN;
        case "1", "7" -> Kind.HOME;
        case "4", "8" -> Kind.END;
        default -> null;
      };
      default -> null;
    };
    if (kind != null) {
      keys.add(Key.of(kind));
    }
    return end - at + 1; // unknown sequences (F-keys, left/right) are swallowed whole
  }
}
