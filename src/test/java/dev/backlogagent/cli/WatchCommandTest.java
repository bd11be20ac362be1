package dev.backlogagent.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.backlogagent.testing.KernelTests;
import dev.backlogagent.testing.TestNetns;
import dev.backlogagent.testing.TestNetns.ListenerProcess;
import dev.backlogagent.testing.Tmux;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

/**
 * `backlog-agent watch` in a real terminal (tmux): while a listener with backlog 4 is overflowed by
 * connections in a test namespace, it is on the first row with its drops; the keys filter, scroll and quit.
 */
class WatchCommandTest {
  private static final Path DIR = Path.of("target", "watch-test");
  private static final int FIRST_ROW = 5; // header 3 lines, a blank, the column headings

  private static List<String> watch(String... args) {
    List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
        "-cp", System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")),
        "dev.backlogagent.cli.BacklogAgent", "watch"));
    command.addAll(List.of(args));
    return command;
  }

  /** A listener row split into its columns (separated by two blanks or more). */
  private static String[] columns(String row) {
    return row.strip().split("\\s{2,}");
  }

  private static boolean rowIs(List<String> screen, int index, int port) {
    return screen.size() > FIRST_ROW + index && screen.get(FIRST_ROW + index).contains("127.0.0.1:" + port + " ");
  }

  @Test
  void theOverflowingListenerIsOnTheFirstRowWithItsDropsAndTheKeysFilterScrollAndQuit() throws Exception {
    KernelTests.assumeKernel("watch in a real terminal");
    KernelTests.requireCommand("tmux", "watch in a real terminal");
    KernelTests.requireCommand("python3");
    try (TestNetns ns = TestNetns.create();
        Tmux tmux = Tmux.start(DIR, 200, 24, watch("--netns", Long.toString(ns.inode()), "--state",
            DIR.resolve("state.json").toString()))) {
      List<String> attached = tmux.awaitScreen(s -> s.get(1).startsWith("concerns  "), 90_000, "the programs to attach");
      assertThat(attached.get(0)).startsWith("backlog-agent watch  |  tier tracepoint  |  every 1 s");
      // this kernel runs every tracepoint concern; syn_refused needs the kprobe tier; watch leaves states off
      assertThat(attached.get(1)).startsWith("concerns  run: listen, handshakes, synack, drops, resets, accept_wait")
          .contains("cannot: syn_refused", "off: states");

      // Started once watch runs, so that it sees their listen() calls and knows the backlogs they asked for.
      ListenerProcess overflowing = ns.startListener("--backlog", "4", "--connect-later");
      ListenerProcess half = ns.startListener("--backlog", "8", "--connect", "3");
      ListenerProcess idle = ns.startListener("--backlog", "128");
      AtomicBoolean load = new AtomicBoolean(true);
      Thread connector = new Thread(() -> {
        try {
          for (int i = 0; i < 40 && load.get(); i++) {
            overflowing.connect(40); // 4 fit and 1 more is accepted by the kernel's > test; the other SYNs are dropped
            Thread.sleep(700);
          }
        } catch (Exception e) {
          // the fixture was stopped: the test is over
        }
      }, "overflow-load");
      connector.start();
      try {
        List<String> screen = tmux.awaitScreen(s -> rowIs(s, 0, overflowing.port()) && rowIs(s, 1, half.port())
                && rowIs(s, 2, idle.port()) && !columns(s.get(FIRST_ROW))[5].equals("0"),
            30_000, "the overflowing listener on the first row with drops");
        String[] first = columns(screen.get(FIRST_ROW));
        assertThat(first).hasSize(9);
        assertThat(first[0]).isEqualTo(ns.name());
        assertThat(first[1]).isEqualTo("127.0.0.1:" + overflowing.port());
        assertThat(first[2]).isEqualTo("python3[" + overflowing.pid() + "]");
        assertThat(first[3]).isEqualTo("5/4");
        assertThat(first[4]).isEqualTo("4");
        double dropsPerSecond = Double.parseDouble(first[5]);
        assertThat(dropsPerSecond).isPositive();
        assertThat(first[8]).startsWith("accept queue");
        // In this namespace only that listener drops: the host line's ListenOverflows/s is its drops/s (both read
        // with the same inventory, a few microseconds apart: a drop may fall between; and both are rounded).
        String host = screen.get(2);
        long overflowsPerSecond = Long.parseLong(host.replaceAll(".*ListenOverflows (\\d+) .*", "$1"));
        assertThat((double) overflowsPerSecond).isCloseTo(dropsPerSecond,
            org.assertj.core.data.Offset.offset(Math.max(2.0, dropsPerSecond * 0.05)));
        long ssDrops = ns.ss().port(overflowing.port()).drops();
        // A rate over the real time between two inventories: an interval can be a little under its second
        // (the inventory read that ends it took less time than the one that began it).
        assertThat(dropsPerSecond).isLessThanOrEqualTo(ssDrops / 0.8);
        assertThat(columns(screen.get(FIRST_ROW + 1))).startsWith(ns.name(), "127.0.0.1:" + half.port(),
            "python3[" + half.pid() + "]", "3/8", "8", "0");
        assertThat(columns(screen.get(FIRST_ROW + 2))).startsWith(ns.name(), "127.0.0.1:" + idle.port(),
            "python3[" + idle.pid() + "]", "0/128", "128", "0");

        // p: only the listener on that port
        tmux.sendKeys("p");
        tmux.awaitScreen(s -> s.get(s.size() - 1).startsWith("port (empty: all): _"), 5_000, "the port prompt");
        tmux.sendKeys(Integer.toString(half.port()), "Enter");
        List<String> filtered = tmux.awaitScreen(s -> rowIs(s, 0, half.port()), 5_000, "the port filter");
        assertThat(String.join("\n", filtered)).doesNotContain(":" + overflowing.port() + " ", ":" + idle.port() + " ");
        assertThat(filtered.get(filtered.size() - 1)).contains("1-1 of 1 listeners", "port " + half.port());
        tmux.sendKeys("p", "Enter");
        tmux.awaitScreen(s -> rowIs(s, 0, overflowing.port()) && rowIs(s, 2, idle.port()), 5_000, "the filter cleared");

        // n: a namespace that is not this one leaves no row; its own name brings them back
        tmux.sendKeys("n", "elsewhere", "Enter");
        tmux.awaitScreen(s -> String.join("\n", s).contains("(no listener matches the filter)"), 5_000, "the netns filter");
        tmux.sendKeys("n", ns.name(), "Enter");
        tmux.awaitScreen(s -> rowIs(s, 0, overflowing.port()) && s.get(s.size() - 1).contains("netns " + ns.name()),
            5_000, "the netns filter by name");

        // a smaller window shows two rows; Down scrolls to the next
        tmux.resize(200, 8);
        tmux.awaitScreen(s -> s.size() >= 8 && rowIs(s, 0, overflowing.port()) && rowIs(s, 1, half.port())
            && s.get(7).startsWith("1-2 of 3 listeners"), 5_000, "two rows in 8 lines");
        tmux.sendKeys("Down");
        tmux.awaitScreen(s -> rowIs(s, 0, half.port()) && rowIs(s, 1, idle.port()) && s.get(7).startsWith("2-3 of 3"),
            5_000, "the page scrolled down");
        tmux.sendKeys("Up");
        tmux.awaitScreen(s -> rowIs(s, 0, overflowing.port()), 5_000, "the page scrolled up");
      } finally {
        load.set(false);
        connector.join(5_000);
      }
      List<ProcessHandle> agent = ProcessHandle.of(tmux.panePid()).orElseThrow().descendants()
          .filter(p -> p.info().command().map(c -> c.endsWith("java") || c.endsWith("bpftrace")).orElse(false)).toList();
      assertThat(agent).extracting(p -> p.info().command().orElse("")).anyMatch(c -> c.endsWith("bpftrace"));
      tmux.sendKeys("q");
      assertThat(tmux.awaitExit(10_000)).as("exit status after q; stderr: %s", tmux.stderr()).isZero();
      assertThat(tmux.stderr()).isEmpty();
      assertThat(agent).as("the JVM and its bpftrace children after q").noneMatch(ProcessHandle::isAlive);
    }
  }

  @Test
  void aTerminalTooSmallIsToldInOneLineWithExit2() throws Exception {
    KernelTests.requireCommand("tmux", "watch in a real terminal");
    try (Tmux tmux = Tmux.start(DIR, 50, 6, watch())) {
      assertThat(tmux.awaitExit(30_000)).isEqualTo(2);
      assertThat(tmux.stderr()).isEqualTo("backlog-agent: watch: terminal too small (50x6); it needs at least 60x8\n");
    }
  }

  @Test
  void withoutATerminalItSaysSoInOneLineWithExit2() {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    // Surefire runs tests with pipes, not a terminal, as a script would.
    assertThat(BacklogAgent.execute(new PrintWriter(out), new PrintWriter(err), "watch")).isEqualTo(2);
    assertThat(err.toString()).isEqualTo("backlog-agent: watch needs a terminal (standard input and output a tty); "
        + "for scripts use trace, or listeners --interval\n");
    assertThat(out.toString()).isEmpty();
  }
}
