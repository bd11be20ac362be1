package dev.backlogagent.daemon;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.backlogagent.testing.KernelTests;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * SystemdNotify against a real AF_UNIX datagram socket, bound by Python (an independent implementation of
 * the address forms) with SO_PASSCRED, so the sender's pid is checked as systemd checks it for
 * NotifyAccess=main.
 */
class SystemdNotifyTest {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final long PID = ProcessHandle.current().pid();

  /** A received datagram: its text, the sender's pid from SCM_CREDENTIALS, and the receiver's CLOCK_MONOTONIC. */
  record Datagram(String text, long pid, long receivedMonotonicMicros) {}

  @Test
  void a_daemon_started_by_systemd_reports_ready_status_reload_watchdog_and_stop_to_a_socket_path(@TempDir Path dir)
      throws Exception {
    String socket = dir.resolve("notify").toString();
    List<String> expected = new ArrayList<>();
    List<Datagram> received;
    long beforeReload;
    long afterReload;
    try (Receiver receiver = Receiver.bind(socket, 8)) {
      SystemdNotify notify = SystemdNotify.fromEnvironment(Map.of("NOTIFY_SOCKET", socket), PID);
      assertThat(notify.enabled()).isTrue();
      assertThat(notify.ready()).isTrue();
      assertThat(notify.status("tier tracepoint: 6 programs attached\nnot running: DROPS")).isTrue();
      assertThat(notify.ready("tier counters")).isTrue();
      beforeReload = System.nanoTime() / 1_000;
      assertThat(notify.reloading()).isTrue();
      afterReload = System.nanoTime() / 1_000;
      assertThat(notify.watchdog()).isTrue();
      assertThat(notify.extendTimeout(Duration.ofSeconds(30))).isTrue();
      assertThat(notify.status("backlog 1024 → 64 ✓")).isTrue();
      assertThat(notify.stopping()).isTrue();
      received = receiver.received();
    }
    expected.add("READY=1");
    expected.add("STATUS=tier tracepoint: 6 programs attached not running: DROPS");
    expected.add("READY=1\nSTATUS=tier counters");
    expected.add("RELOADING=1\nMONOTONIC_USEC=");
    expected.add("WATCHDOG=1");
    expected.add("EXTEND_TIMEOUT_USEC=30000000");
    expected.add("STATUS=backlog 1024 → 64 ✓");
    expected.add("STOPPING=1");

    assertThat(received).hasSize(expected.size());
    for (int i = 0; i < expected.size(); i++) {
      if (expected.get(i).endsWith("=")) {
        assertThat(received.get(i).text()).startsWith(expected.get(i));
      } else {
        assertThat(received.get(i).text()).as("datagram %d", i).isEqualTo(expected.get(i));
      }
    }
    assertThat(received).allSatisfy(d -> assertThat(d.pid()).as("sender pid (NotifyAccess=main)").isEqualTo(PID));

    // systemd compares MONOTONIC_USEC with its own CLOCK_MONOTONIC: the Python receiver reads that clock.
    Datagram reload = received.get(3);
    long monotonic = Long.parseLong(reload.text().substring("RELOADING=1\nMONOTONIC_USEC=".length()));
    assertThat(monotonic).isBetween(beforeReload, afterReload);
    assertThat(monotonic).isBetween(reload.receivedMonotonicMicros() - 10_000_000, reload.receivedMonotonicMicros());
  }

  @Test
  void an_abstract_socket_name_starting_with_at_is_reached_without_a_file(@TempDir Path dir) throws Exception {
    String socket = "@backlog-agent-test-" + PID + "-" + System.nanoTime();
    List<Datagram> received;
    try (Receiver receiver = Receiver.bind(socket, 2)) {
      SystemdNotify notify = SystemdNotify.fromEnvironment(Map.of("NOTIFY_SOCKET", socket), PID);
      assertThat(notify.ready()).isTrue();
      assertThat(notify.stopping()).isTrue();
      received = receiver.received();
    }
    assertThat(received).extracting(Datagram::text).containsExactly("READY=1", "STOPPING=1");
    assertThat(received).extracting(Datagram::pid).containsOnly(PID);
  }

  @Test
  void without_notify_socket_nothing_is_sent_and_nothing_fails() {
    SystemdNotify notify = SystemdNotify.fromEnvironment(Map.of(), PID);
    assertThat(notify.enabled()).isFalse();
    assertThat(notify.ready()).isFalse();
    assertThat(notify.status("x")).isFalse();
    assertThat(notify.reloading()).isFalse();
    assertThat(notify.stopping()).isFalse();
    assertThat(notify.watchdog()).isFalse();
    assertThat(notify.watchdogInterval()).isEmpty();
  }

  @Test
  void a_socket_that_is_gone_is_logged_once_and_never_throws(@TempDir Path dir) {
    String socket = dir.resolve("no-such-socket").toString();
    SystemdNotify notify = SystemdNotify.fromEnvironment(Map.of("NOTIFY_SOCKET", socket), PID);
    List<LogRecord> records = new ArrayList<>();
    Logger logger = Logger.getLogger(SystemdNotify.class.getName());
    Handler capture = new Handler() {
      @Override
      public void publish(LogRecord record) {
        records.add(record);
      }

      @Override
      public void flush() {}

      @Override
      public void close() {}
    };
    Level previous = logger.getLevel();
    logger.addHandler(capture);
    logger.setLevel(Level.ALL);
    try {
      assertThat(notify.enabled()).isTrue();
      assertThat(notify.ready()).isFalse();
      assertThat(notify.status("still here")).isFalse();
      assertThat(notify.stopping()).isFalse();
    } finally {
      logger.removeHandler(capture);
      logger.setLevel(previous);
    }
    List<LogRecord> warnings = records.stream().filter(r -> r.getLevel().intValue() >= Level.WARNING.intValue()).toList();
    assertThat(warnings).hasSize(1);
    assertThat(formatted(warnings.get(0))).contains(socket).contains("READY=1").contains("No such file or directory");
    assertThat(records).hasSize(3);
  }

  @Test
  void addresses_that_sd_notify_would_not_accept_disable_notification() {
    for (String socket : List.of("relative/notify", "@", "vsock:2:1234", "/" + "x".repeat(107))) {
      SystemdNotify notify = SystemdNotify.fromEnvironment(Map.of("NOTIFY_SOCKET", socket), PID);
      assertThat(notify.enabled()).as(socket).isFalse();
      assertThat(notify.ready()).as(socket).isFalse();
    }
    // The longest that fits: 106 bytes of path and its NUL; 107 bytes of abstract name after the '@'.
    assertThat(SystemdNotify.socketAddress("/" + "x".repeat(106))).hasSize(2 + 108);
    assertThat(SystemdNotify.socketAddress("@" + "x".repeat(107))).hasSize(2 + 108);
    assertThat(SystemdNotify.socketAddress("@" + "x".repeat(108))).isNull();
  }

  @Test
  void the_watchdog_is_pinged_at_half_its_timeout_and_only_by_the_process_it_names() {
    assertThat(SystemdNotify.fromEnvironment(Map.of("WATCHDOG_USEC", "10000000"), PID).watchdogInterval())
        .contains(Duration.ofSeconds(5));
    assertThat(SystemdNotify.fromEnvironment(
            Map.of("WATCHDOG_USEC", "10000000", "WATCHDOG_PID", Long.toString(PID)), PID).watchdogInterval())
        .contains(Duration.ofSeconds(5));
    assertThat(SystemdNotify.fromEnvironment(
            Map.of("WATCHDOG_USEC", "10000000", "WATCHDOG_PID", Long.toString(PID + 1)), PID).watchdogInterval())
        .isEmpty();
    assertThat(SystemdNotify.fromEnvironment(Map.of("WATCHDOG_USEC", "0"), PID).watchdogInterval()).isEmpty();
    assertThat(SystemdNotify.fromEnvironment(Map.of("WATCHDOG_USEC", "soon"), PID).watchdogInterval()).isEmpty();
  }

  private static String formatted(LogRecord record) {
    return new java.util.logging.SimpleFormatter().formatMessage(record);
  }

  /** A Python process bound to an AF_UNIX datagram socket that prints each datagram it receives as JSON. */
  private static final class Receiver implements AutoCloseable {
    private static final String SCRIPT = String.join("\n",
        "import json, socket, struct, sys, time",
        "address, count = sys.argv[1], int(sys.argv[2])",
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)",
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)",
        "s.bind('\\0' + address[1:] if address.startswith('@') else address)",
        "s.settimeout(10)",
        "print('bound', flush=True)",
        "for _ in range(count):",
        "    data, ancillary, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))",
        "    now = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000",
        "    pid = [struct.unpack('iII', d[:12])[0] for level, kind, d in ancillary",
        "           if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS]",
        "    print(json.dumps({'text': data.decode('utf-8'), 'pid': pid[0] if pid else -1, 'now': now}), flush=True)",
        "");

    private final Process process;
    private final BufferedReader out;
    private final int count;

    private Receiver(Process process, int count) {
      this.process = process;
      this.out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
      this.count = count;
    }

    static Receiver bind(String address, int count) throws IOException {
      Path python = KernelTests.requireCommand("python3");
      Process process = new ProcessBuilder(python.toString(), "-c", SCRIPT, address, Integer.toString(count))
          .redirectError(ProcessBuilder.Redirect.INHERIT)
          .start();
      Receiver receiver = new Receiver(process, count);
      String first = receiver.out.readLine();
      if (!"bound".equals(first)) {
        receiver.close();
        throw new IOException("the receiver did not bind " + address + " (printed " + first + ")");
      }
      if (!address.startsWith("@")) {
        assertThat(Files.exists(Path.of(address))).as("socket file").isTrue();
      }
      return receiver;
    }

    List<Datagram> received() throws IOException {
      List<Datagram> datagrams = new ArrayList<>();
      for (int i = 0; i < count; i++) {
        String line = out.readLine();
        if (line == null) {
          break; // the receiver timed out: the assertions on the list tell what is missing
        }
        JsonNode node = JSON.readTree(line);
        datagrams.add(new Datagram(node.get("text").asText(), node.get("pid").asLong(), node.get("now").asLong()));
      }
      return datagrams;
    }

    @Override
    public void close() throws IOException {
      process.destroy();
      try {
        process.waitFor(5, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      out.close();
    }
  }
}
