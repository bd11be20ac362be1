package dev.backlogagent.cli;

import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.listener.InventoryReader;
import dev.backlogagent.report.WatchView;
import dev.backlogagent.watch.ListenerWatch;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.jline.terminal.Attributes;
import org.jline.terminal.Size;
import org.jline.terminal.Terminal;
import org.jline.terminal.TerminalBuilder;
import org.jline.utils.AttributedString;
import org.jline.utils.AttributedStyle;
import org.jline.utils.Display;
import org.jline.utils.InfoCmp.Capability;
import org.jline.utils.NonBlockingReader;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * A live, full-screen view of the worst listeners for a person at a terminal, on the same pipeline as
 * `trace` and `run`. The terminal (raw mode, keys, size, redraws) is JLine's; what is drawn is
 * {@link WatchView}'s.
 */
@Command(
    footer = "%nKeys: q quits; p and n filter by port and by namespace (name or inode; empty clears); Up, Down, PgUp, PgDn "
        + "scroll.%nNot a terminal, or smaller than " + WatchView.MIN_COLUMNS + "x" + WatchView.MIN_ROWS
        + ": one line on stderr, exit 2 (scripts use trace, or listeners --interval).%nReference: docs/watch.md in the source tree.",
    mixinStandardHelpOptions = true,
    name = "watch",
    description = "Shows the worst listeners live, full screen, refreshed every interval: queues, drops, SYN-ACK "
        + "retransmits, accept waits and a diagnosis, with the host's counters per second.")
final class WatchCommand implements java.util.concurrent.Callable<Integer> {
  /** After ESC, how long to wait for the rest of an arrow key's sequence before taking it as Escape. */
  private static final long ESCAPE_WAIT_MILLIS = 60;

  @Mixin ListenerScopeOptions scopeOptions;

  @Mixin TracerOptions tracer;

  @Option(names = "--interval", paramLabel = "S", defaultValue = "1", description = "Refresh every S seconds (default: ${DEFAULT-VALUE}).")
  int interval;

  @Option(names = "--state", paramLabel = "FILE", defaultValue = TraceCommand.DEFAULT_STATE_FILE,
      description = "Where to keep the listen() calls seen, for requested backlogs (default: ${DEFAULT-VALUE}).")
  Path stateFile;

  /** What the loop waits for: a key, a resize, the end. */
  private sealed interface Input permits Pressed, Resized, Quit {}

  private record Pressed(TerminalKeys.Key key) implements Input {}

  private record Resized() implements Input {}

  private record Quit() implements Input {}

  @Override
  public Integer call() throws Exception {
    validate();
    if (System.console() == null) {
      throw new BadInputException("watch needs a terminal (standard input and output a tty); "
          + "for scripts use trace, or listeners --interval");
    }
    InventoryReader.Scope scope = scopeOptions.resolve();
    Long scopeNetns = scope.netns();
    Terminal terminal = TerminalBuilder.builder().system(true).jni(true).exec(true).dumb(false).nativeSignals(true).build();
    Size size = terminal.getSize();
    if (Terminal.TYPE_DUMB.equals(terminal.getType()) || Terminal.TYPE_DUMB_COLOR.equals(terminal.getType())) {
      terminal.close();
      throw new BadInputException("watch needs a terminal that can be addressed, not '" + terminal.getType() + "'");
    }
    if (size.getColumns() < WatchView.MIN_COLUMNS || size.getRows() < WatchView.MIN_ROWS) {
      terminal.close();
      throw new BadInputException(WatchView.tooSmall(size.getColumns(), size.getRows()).replace("backlog-agent ", ""));
    }
    BlockingQueue<Input> inputs = new LinkedBlockingQueue<>();
    CountDownLatch finished = new CountDownLatch(1);
    Thread hook = new Thread(() -> {
      inputs.offer(new Quit());
      try {
        finished.await(5, TimeUnit.SECONDS); // the screen is restored before the JVM goes
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }, "watch-shutdown");
    Runtime.getRuntime().addShutdownHook(hook);
    Attributes saved = terminal.enterRawMode();
    try {
      terminal.handle(Terminal.Signal.WINCH, s -> inputs.offer(new Resized()));
      terminal.handle(Terminal.Signal.INT, s -> inputs.offer(new Quit()));
      terminal.puts(Capability.enter_ca_mode);
      terminal.puts(Capability.keypad_xmit);
      terminal.puts(Capability.cursor_invisible);
      terminal.flush();
      Display display = new Display(terminal, true);
      Thread keys = readKeys(terminal, inputs);
      Screen screen = new Screen(terminal, display);
      screen.message("backlog-agent watch: probing the kernel and attaching the BPF programs...");
      run(screen, inputs, scope, scopeNetns);
      keys.interrupt();
    } finally {
      terminal.puts(Capability.cursor_visible);
      terminal.puts(Capability.keypad_local);
      terminal.puts(Capability.exit_ca_mode);
      terminal.flush();
      terminal.setAttributes(saved);
      terminal.close();
      finished.countDown();
      try {
        Runtime.getRuntime().removeShutdownHook(hook);
      } catch (IllegalStateException e) {
        // already shutting down: the hook is running
      }
    }
    return ExitCode.OK;
  }

  private void run(Screen screen, BlockingQueue<Input> inputs, InventoryReader.Scope scope, Long scopeNetns)
      throws IOException, InterruptedException {
    ListenerWatch.Settings settings = new ListenerWatch.Settings(tracer.forcedTier(), tracer.bpftrace, tracer.programs,
        Duration.ofSeconds(interval), 100, false, stateFile, scope, key -> inScope(key, scopeNetns),
        tracer.attachTimeout(), tracer.btf);
    try (ListenerWatch watch = ListenerWatch.start(settings, null)) {
      WatchView view = new WatchView(watch.tier().label(), WatchView.concernsLine(watch.concerns()), Duration.ofSeconds(interval), ZoneId.systemDefault());
      screen.draw(view);
      long period = TimeUnit.SECONDS.toNanos(interval);
      long next = System.nanoTime() + period;
      while (true) {
        Input input = inputs.poll(Math.max(0, next - System.nanoTime()), TimeUnit.NANOSECONDS);
        if (input == null) {
          view.update(watch.closeInterval());
          next += period;
          if (next < System.nanoTime()) {
            next = System.nanoTime() + period; // a slow interval (a huge inventory) is not caught up in a burst
          }
        } else if (input instanceof Quit) {
          return;
        } else if (input instanceof Pressed p && !handle(p.key(), view, screen)) {
          return;
        }
        screen.draw(view);
      }
    }
  }

  /** Applies one key; false when it quits. */
  private static boolean handle(TerminalKeys.Key key, WatchView view, Screen screen) {
    int page = Math.max(1, screen.rows() - 7);
    if (key.kind() == TerminalKeys.Kind.INTERRUPT) {
      return false;
    }
    if (view.prompting()) {
      switch (key.kind()) {
        case ENTER -> view.acceptPrompt();
        case ESCAPE -> view.cancelPrompt();
        case BACKSPACE -> view.erase();
        case CHAR -> view.type(String.valueOf(key.ch()));
        default -> { }
      }
      return true;
    }
    switch (key.kind()) {
      case CHAR -> {
        switch (Character.toLowerCase(key.ch())) {
          case 'q' -> {
            return false;
          }
          case 'p' -> view.startPrompt(WatchView.Prompt.PORT);
          case 'n' -> view.startPrompt(WatchView.Prompt.NAMESPACE);
          case 'j' -> view.scrollBy(1);
          case 'k' -> view.scrollBy(-1);
          default -> { }
        }
      }
      case UP -> view.scrollBy(-1);
      case DOWN -> view.scrollBy(1);
      case PAGE_UP -> view.scrollBy(-page);
      case PAGE_DOWN -> view.scrollBy(page);
      case HOME -> view.scrollToTop();
      case END -> view.scrollBy(Integer.MAX_VALUE / 2);
      default -> { }
    }
    return true;
  }

  /** Reads the terminal on its own thread, so that the loop waits on one queue for keys and intervals alike. */
  private static Thread readKeys(Terminal terminal, BlockingQueue<Input> inputs) {
    Thread t = new Thread(() -> {
      TerminalKeys decoder = new TerminalKeys();
      NonBlockingReader reader = terminal.reader();
      try {
        while (!Thread.currentThread().isInterrupted()) {
          int c = reader.read(decoder.hasPending() ? ESCAPE_WAIT_MILLIS : 200);
          if (c == NonBlockingReader.EOF) {
            inputs.offer(new Quit());
            return;
          }
          List<TerminalKeys.Key> keys = c == NonBlockingReader.READ_EXPIRED
              ? decoder.flush() : decoder.feed(String.valueOf((char) c));
          for (TerminalKeys.Key k : keys) {
            inputs.offer(new Pressed(k));
          }
        }
      } catch (IOException e) {
        inputs.offer(new Quit()); // the terminal went away
      }
    }, "watch-keys");
    t.setDaemon(true);
    t.start();
    return t;
  }

  private boolean inScope(ListenerKey key, Long scopeNetns) {
    Integer port = scopeOptions.port;
    return (scopeNetns == null || key.netns() == scopeNetns) && (port == null || key.port() == port);
  }

  private void validate() {
    if (interval < 1 || interval > 3600) {
      throw new BadInputException("--interval must be between 1 and 3600 seconds, not " + interval);
    }
    tracer.validate();
  }

  /** The terminal as the view's lines are drawn on it, resized when the terminal is. */
  private static final class Screen {
    private final Terminal terminal;
    private final Display display;
    private Size size;

    Screen(Terminal terminal, Display display) {
      this.terminal = terminal;
      this.display = display;
      resize();
    }

    int rows() {
      return size.getRows();
    }

    private void resize() {
      Size now = terminal.getSize();
      if (!now.equals(size)) {
        size = new Size(now.getColumns(), now.getRows());
        display.clear();
        display.resize(size.getRows(), size.getColumns());
      }
    }

    void message(String text) {
      resize();
      List<AttributedString> lines = new ArrayList<>();
      lines.add(new AttributedString(text.length() < size.getColumns() ? text : text.substring(0, size.getColumns() - 1)));
      display.update(lines, 0);
      terminal.flush();
    }

    void draw(WatchView view) {
      resize();
      List<AttributedString> lines = new ArrayList<>();
      for (WatchView.Line line : view.render(size.getColumns(), size.getRows())) {
        lines.add(new AttributedString(line.text(), style(line.emphasis())));
      }
      display.update(lines, size.cursorPos(0, 0));
      terminal.flush();
    }

    private static AttributedStyle style(WatchView.Emphasis e) {
      return switch (e) {
        case HEADER -> AttributedStyle.BOLD;
        case HEADINGS, STATUS -> AttributedStyle.INVERSE;
        case TROUBLE -> AttributedStyle.DEFAULT.foreground(AttributedStyle.RED).bold();
        case NORMAL -> AttributedStyle.DEFAULT;
      };
    }
  }
}
