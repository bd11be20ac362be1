package dev.backlogagent.kernel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

class ChildProcessTest {

  @Test
  void a_child_that_exits_reports_its_status_and_both_streams_as_utf8() throws Exception {
    ChildProcess.Exit exit =
        ChildProcess.run("test-echo", List.of("sh", "-c", "printf '\\303\\234berlauf\\n'; printf 'drop\\n' >&2; exit 3"),
            Duration.ofSeconds(10));
    assertThat(exit.timedOut()).isFalse();
    assertThat(exit.status()).isEqualTo(3);
    assertThat(exit.succeeded()).isFalse();
    assertThat(exit.stdout()).isEqualTo("Überlauf\n");
    assertThat(exit.stderr()).isEqualTo("drop\n");
  }

  @Test
  void a_child_that_outlives_its_timeout_is_destroyed() throws Exception {
    long start = System.nanoTime();
    ChildProcess.Exit exit =
        ChildProcess.run("test-sleep", List.of("sh", "-c", "echo started; exec sleep 60"), Duration.ofMillis(500));
    assertThat(exit.timedOut()).isTrue();
    assertThat(exit.succeeded()).isFalse();
    assertThat(exit.stdout()).isEqualTo("started\n");
    assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(10));
  }

  @Test
  void output_larger_than_a_pipe_buffer_does_not_stall_the_child() throws Exception {
    ChildProcess.Exit exit =
        ChildProcess.run("test-flood", List.of("sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x; head -c 300000 /dev/zero >&2"),
            Duration.ofSeconds(10));
    assertThat(exit.succeeded()).isTrue();
    assertThat(exit.stdout()).hasSize(300_000);
    assertThat(exit.stderr()).hasSize(300_000);
  }

  @Test
  void a_child_is_killed_when_the_thread_that_started_it_ends() throws Exception {
    assumeTrue(ChildProcess.findExecutable("setpriv").isPresent(), "needs setpriv");
    // The parent-death signal follows the starting thread, not the JVM: what keeps bpftrace from outliving a
    // killed agent also kills it when a short-lived thread started it.
    AtomicReference<ChildProcess> child = new AtomicReference<>();
    Thread starter =
        new Thread(
            () -> {
              try {
                child.set(ChildProcess.start("test-orphan", List.of("sleep", "60")));
                Thread.sleep(300); // setpriv arms the signal after exec; end only once it has
              } catch (Exception e) {
                throw new IllegalStateException(e);
              }
            });
    starter.start();
    starter.join();
    try (ChildProcess orphan = child.get()) {
      ChildProcess.Exit exit = orphan.await(Duration.ofSeconds(10));
      assertThat(exit.timedOut()).isFalse();
      assertThat(exit.status()).isEqualTo(128 + 9);
    }
  }

  @Test
  void executables_are_found_on_path_and_in_system_directories() {
    assertThat(ChildProcess.findExecutable("sh")).isPresent();
    assertThat(ChildProcess.findExecutable("no-such-command-anywhere")).isEmpty();
  }
}
