package dev.backlogagent.cli;

import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.List;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** The root command: lists the subcommands and turns failures into one-line errors and named exit codes. */
@Command(
    name = "backlog-agent",
    mixinStandardHelpOptions = true,
    versionProvider = Version.class,
    description = "Tells why TCP connections are lost at the door of this host's servers.",
    subcommands = {DoctorCommand.class, ListenersCommand.class, TraceCommand.class, WatchCommand.class, RunCommand.class})
public final class BacklogAgent implements Runnable {
  /**
   * The SDK's exporters log every failed export (two lines each, with the collector down for an hour: a
   * full journal); the agent's ExportHealth says it once when exports start failing and once when they work
   * again. Held here because java.util.logging keeps its loggers only weakly, and a level set on a
   * collected logger is lost. With --verbose they speak again.
   */
  private static final List<java.util.logging.Logger> EXPORT_FAILURE_LOGGERS = List.of(
      java.util.logging.Logger.getLogger("io.opentelemetry.exporter"),
      java.util.logging.Logger.getLogger("io.opentelemetry.sdk.metrics.export.PeriodicMetricReader"),
      java.util.logging.Logger.getLogger("io.opentelemetry.sdk.trace.export.BatchSpanProcessor"),
      java.util.logging.Logger.getLogger("io.opentelemetry.sdk.trace.export.SimpleSpanProcessor"));

  @Option(names = "--verbose", description = "Print stack traces with errors.", scope = CommandLine.ScopeType.INHERIT)
  boolean verbose;

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(spec.commandLine().getOut());
  }

  public static void main(String[] args) {
    // UTF-8 whatever the locale: a daemon under systemd often runs with LANG=C, and journald stores UTF-8.
    PrintWriter out = new PrintWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8), true);
    PrintWriter err = new PrintWriter(new OutputStreamWriter(System.err, StandardCharsets.UTF_8), true);
    System.exit(execute(out, err, args));
  }

  /** Runs the command line with the given writers; tests call this instead of main. */
  public static int execute(PrintWriter out, PrintWriter err, String... args) {
    configureLogging(java.util.Arrays.asList(args).contains("--verbose"));
    BacklogAgent root = new BacklogAgent();
    CommandLine cli = new CommandLine(root);
    cli.setOut(out);
    cli.setErr(err);
    cli.setExecutionExceptionHandler(
        (ex, commandLine, parseResult) -> {
          boolean verbose = parseResult.hasMatchedOption("--verbose") || root.verbose;
          commandLine.getErr().println("backlog-agent: " + oneLine(ex));
          if (verbose) {
            ex.printStackTrace(commandLine.getErr());
          }
          return ex instanceof BadInputException ? ExitCode.BAD_INPUT : ExitCode.FAILURE;
        });
    int code = cli.execute(args);
    out.flush();
    err.flush();
    return code;
  }

  /**
   * One line per log record on stderr (journald adds its own timestamp); warnings and worse unless
   * --verbose, which also shows what bpftrace children print.
   */
  static void configureLogging(boolean verbose) {
    // Without --verbose a record's exception is left out: an unreachable collector is one line, not a stack trace.
    System.setProperty("java.util.logging.SimpleFormatter.format", verbose ? "%4$s %3$s: %5$s%6$s%n" : "%4$s %3$s: %5$s%n");
    java.util.logging.Logger root = java.util.logging.Logger.getLogger("");
    java.util.logging.Level level = verbose ? java.util.logging.Level.INFO : java.util.logging.Level.WARNING;
    root.setLevel(level);
    for (java.util.logging.Handler h : root.getHandlers()) {
      h.setLevel(level);
      h.setFormatter(new java.util.logging.SimpleFormatter());
    }
    for (java.util.logging.Logger quiet : EXPORT_FAILURE_LOGGERS) {
      quiet.setLevel(verbose ? null : java.util.logging.Level.OFF);
    }
  }

  static String oneLine(Throwable ex) {
    String message = ex.getMessage();
    if (message == null || message.isBlank()) {
      message = ex.getClass().getSimpleName();
    }
    return message.replace('\n', ' ');
  }
}
