package dev.backlogagent.packaging;

import dev.backlogagent.daemon.SystemdNotify;
import java.time.Instant;

/**
 * Stands in for the daemon's side of Type=notify under systemd (systemd/test/boot-under-systemd.sh): ready
 * after a pretend attach, RELOADING=1 then READY=1 on SIGHUP, STOPPING=1 on SIGTERM. What it prints is the
 * daemon's contract: each notification was sent.
 */
public final class NotifyProbe {
  private NotifyProbe() {}

  public static void main(String[] args) throws InterruptedException {
    SystemdNotify notify = SystemdNotify.fromEnvironment();
    System.out.println("enabled=" + notify.enabled() + " pid=" + ProcessHandle.current().pid());
    sun.misc.Signal.handle(new sun.misc.Signal("HUP"), signal -> {
      System.out.println("reloading=" + notify.reloading());
      System.out.println("ready after reload=" + notify.ready("probe: reloaded"));
    });
    Runtime.getRuntime().addShutdownHook(new Thread(() -> System.out.println("stopping=" + notify.stopping())));
    Thread.sleep(2000); // systemctl start must wait for READY=1, not for the process to exist
    System.out.println("ready=" + notify.ready("probe: attached at " + Instant.now()));
    Thread.sleep(Long.MAX_VALUE);
  }
}
