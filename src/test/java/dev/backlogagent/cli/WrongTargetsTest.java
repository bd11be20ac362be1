package dev.backlogagent.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.backlogagent.testing.DaemonProcess;
import dev.backlogagent.testing.KernelTests;
import dev.backlogagent.testing.TestNetns;
import dev.backlogagent.testing.TestNetns.ListenerProcess;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Targets that do not exist are a one-line error (exit 2), never a quiet empty result. */
class WrongTargetsTest {
  private final StringWriter out = new StringWriter();
  private final StringWriter err = new StringWriter();
  @TempDir Path dir;

  private int run(String... args) {
    return BacklogAgent.execute(new PrintWriter(out), new PrintWriter(err), args);
  }

  private String errorLine() {
    String text = err.toString();
    assertThat(text.lines().count()).as(text).isEqualTo(1);
    return text.strip();
  }

  @Test
  void listenersAndTraceRefuseANamespaceInodeNoNamespaceHas() {
    assertThat(run("listeners", "--netns", "999999999")).isEqualTo(2);
    assertThat(errorLine()).isEqualTo("backlog-agent: --netns 999999999: no network namespace has inode 999999999 "
        + "(no process is in one, and no /run/netns entry names one)");
    assertThat(out.toString()).isEmpty();
    err.getBuffer().setLength(0);
    assertThat(run("trace", "--netns", "999999999", "--duration", "1")).isEqualTo(2);
    assertThat(errorLine()).startsWith("backlog-agent: --netns 999999999: no network namespace has inode");
  }

  @Test
  void anUnknownNameOrPidIsRefusedToo() {
    assertThat(run("listeners", "--netns", "bl-hardening-nosuch")).isEqualTo(2);
    assertThat(errorLine()).isEqualTo("backlog-agent: --netns bl-hardening-nosuch: no network namespace named "
        + "'bl-hardening-nosuch' under /run/netns");
    err.getBuffer().setLength(0);
    assertThat(run("listeners", "--netns", "../etc")).isEqualTo(2);
    assertThat(errorLine()).contains("is neither a namespace inode, a pid, nor a name under /run/netns");
    err.getBuffer().setLength(0);
    assertThat(run("listeners", "--netns", "4194000")).isEqualTo(2);
    assertThat(errorLine()).contains("no process with pid 4194000");
  }

  @Test
  void countWithoutIntervalIsRefused() {
    assertThat(run("listeners", "--count", "3")).isEqualTo(2);
    assertThat(errorLine()).isEqualTo("backlog-agent: --count counts looks taken every --interval; give --interval SECONDS too");
  }

  @Test
  void aNamespaceIsFoundByItsNameAsOutputAndConfigNameIt() throws Exception {
    KernelTests.requireRoot();
    KernelTests.requireCommand("ip");
    try (TestNetns ns = TestNetns.create()) {
      ListenerProcess server = ns.startListener("--backlog", "8");
      assertThat(run("listeners", "--json", "--netns", ns.name())).as(err.toString()).isZero();
      JsonNode doc = new ObjectMapper().readTree(out.toString());
      assertThat(doc.get("namespaces")).hasSize(1);
      assertThat(doc.get("namespaces").get(0).get("netns").asLong()).isEqualTo(ns.inode());
      assertThat(doc.get("listeners").get(0).get("port").asInt()).isEqualTo(server.port());
    }
  }

  @Test
  void runCheckRefusesWhatRunRefusesNamingTheKey() throws Exception {
    Path config = DaemonProcess.config(dir, "exporters: {prometheus: {host: 999.1.1.1}}\n");
    assertThat(run("run", "--check", "--config", config.toString())).isEqualTo(2);
    assertThat(errorLine()).isEqualTo("backlog-agent: " + config + ": key 'exporters.prometheus.host': '999.1.1.1' is not an IPv4 address");
    err.getBuffer().setLength(0);
    // `run` itself refuses it the same way (it used to say "OpenTelemetry: Unexpected configuration error (null)").
    assertThat(run("run", "--config", config.toString())).isEqualTo(2);
    assertThat(errorLine()).isEqualTo("backlog-agent: " + config + ": key 'exporters.prometheus.host': '999.1.1.1' is not an IPv4 address");
    err.getBuffer().setLength(0);
    DaemonProcess.config(dir, "exporters: {prometheus: {host: 192.0.2.77}}\n");
    assertThat(run("run", "--check", "--config", config.toString())).isEqualTo(2);
    assertThat(errorLine()).contains("'192.0.2.77' (192.0.2.77) is not an address of this host");
    err.getBuffer().setLength(0);
    DaemonProcess.config(dir, "listeners: {netns: [nosuch-ns]}\n");
    assertThat(run("run", "--check", "--config", config.toString())).isEqualTo(2);
    assertThat(errorLine()).isEqualTo("backlog-agent: " + config + ": key 'listeners.netns': no network namespace named "
        + "'nosuch-ns' under /run/netns");
  }
}
