package dev.backlogagent.kernel;

/**
 * Text a child printed, made safe to log or show: control characters (an escape sequence that rewrites the
 * terminal, a carriage return that hides what came before, a NUL) become visible escapes, and very long
 * text is cut. What a child prints is not trusted: a fake or broken bpftrace can print anything.
 */
public final class ChildText {
  private ChildText() {}

  /** {@code text} with every control character escaped (\\n, \\r, \\t, \\e, \\xNN, \\uNNNN), cut after {@code max} characters. */
  public static String printable(String text, int max) {
    if (text == null) {
      return null;
    }
    StringBuilder out = new StringBuilder(Math.min(text.length(), max) + 16);
    for (int i = 0; i < text.length(); i++) {
      if (out.length() >= max) {
        return out.append('…').toString();
      }
      char c = text.charAt(i);
      switch (c) {
        case '\n' -> out.append("\\n");
        case '\r' -> out.append("\\r");
        case '\t' -> out.append("\\t");
        case 0x1b -> out.append("\\e");
        case '\\' -> out.append('\\');
        default -> {
          if (c < 0x20 || c == 0x7f) {
            out.append(String.format("\\x%02x", (int) c));
          } else if ((c >= 0x80 && c < 0xa0) || c == '\u2028' || c == '\u2029' || c == '\u202e' || c == '\u200b') {
            out.append(String.format("\\u%04x", (int) c)); // C1 controls, line separators, bidi override
          } else {
            out.append(c);
          }
        }
      }
    }
    return out.toString();
  }

  /** {@link #printable(String, int)} with room for one line of a log or a table: 300 characters. */
  public static String printable(String text) {
    return printable(text, 300);
  }
}
