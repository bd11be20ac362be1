package dev.backlogagent.cli;

import dev.backlogagent.config.AgentConfig;
import dev.backlogagent.config.ConfigException;
import dev.backlogagent.config.ConfigLoader;
import dev.backlogagent.daemon.Daemon;
import dev.backlogagent.daemon.SystemdNotify;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import sun.misc.Signal;

/** The daemon, as systemd runs it. */
@Command(
    footer = "%nReference: docs/daemon.md in the source tree.",
    mixinStandardHelpOptions = true,
    name = "run",
    description = {
        "Runs the daemon: keeps the listener inventory and the BPF events current and exports them as OpenTelemetry "
            + "metrics and traces (Prometheus on 127.0.0.1:9464 by default; OTLP once an endpoint is configured).",
        "SIGTERM or SIGINT: stop the children, export once more, exit 0. SIGHUP: reload the configuration."})
final class RunCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Option(names = "--config", paramLabel = "FILE",
      description = "The configuration file (default: /etc/backlog-agent/config.yaml if it exists, else built-in defaults).")
  Path configFile;

  @Option(names = "--btf", paramLabel = "FILE",
      description = "Read the kernel's types from this BTF file (for kernels that ship none); wins over the btf key.")
  Path btf;

  @Option(names = "--check", description = "Validate the configuration and attach the BPF programs, then exit (0: all good).")
  boolean check;

  @Override
  public Integer call() throws Exception {
    PrintWriter out = spec.commandLine().getOut();
    ConfigLoader loader = ConfigLoader.forThisProcess();
    AgentConfig config;
    try {
      config = loader.load(configFile);
    } catch (ConfigException e) {
      throw new BadInputException(e.getMessage());
    }
    SystemdNotify notify = SystemdNotify.fromEnvironment();
    Daemon.Lifecycle lifecycle = new Daemon.Lifecycle() {
      @Override
      public void ready(String status) {
        notify.ready(status); // "programs attached" (or reported unable to): what Type=notify waits for
      }

      @Override
      public void reloading() {
        notify.reloading();
      }

      @Override
      public void stopping() {
        notify.stopping();
      }

      @Override
      public void status(String status) {
        notify.status(status);
      }
    };
    if (btf != null && !(Files.isRegularFile(btf) && Files.isReadable(btf))) {
      throw new BadInputException("--btf " + btf + ": not a readable file");
    }
    Daemon daemon = new Daemon(configFile, config, loader, out, check ? Daemon.Lifecycle.NONE : lifecycle, btf);
    try {
      if (check) {
        int code = daemon.check();
        out.println(code == 0 ? "check passed" : "check failed");
        return code;
      }
      // Our own handlers replace the JVM's (which would run shutdown hooks and exit 143): the daemon stops
      // on its own thread, exports once more and exits 0, as systemd expects of a clean stop.
      Signal.handle(new Signal("TERM"), s -> daemon.requestStop());
      Signal.handle(new Signal("INT"), s -> daemon.requestStop());
      Signal.handle(new Signal("HUP"), s -> daemon.requestReload());
      return daemon.run();
    } catch (ConfigException e) {
      throw new BadInputException(e.getMessage());
    }
  }
}
