package dev.backlogagent.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.backlogagent.listener.Inventory;
import dev.backlogagent.listener.InventoryReader;
import dev.backlogagent.listener.RequestedBacklogBook;
import java.nio.file.Path;
import dev.backlogagent.report.InventoryTable;
import dev.backlogagent.report.Json;
import java.io.PrintWriter;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** Lists every listening TCP socket of the host with its queues, limits, drops and owners. */
@Command(
    footer = "%nReference: docs/listeners.md in the source tree.",
    mixinStandardHelpOptions = true,
    name = "listeners",
    description = "Lists every listening TCP socket, in every network namespace, with its queues, backlog, drops and owners.")
final class ListenersCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Option(names = "--json", description = "Print one JSON document (snake_case) instead of a table.")
  boolean json;

  @Mixin ListenerScopeOptions scopeOptions;

  @Option(names = "--interval", paramLabel = "SECONDS", description = "Look again every SECONDS and flag listeners whose drops rose (dropping).")
  Double interval;

  @Option(names = "--count", paramLabel = "N", description = "With --interval: stop after N looks (default: until interrupted).")
  Integer count;

  @Option(names = "--state", paramLabel = "FILE", defaultValue = TraceCommand.DEFAULT_STATE_FILE,
      description = "The listen() calls a running agent or trace saw, for requested backlogs (default: ${DEFAULT-VALUE}).")
  Path stateFile;

  @Override
  public Integer call() throws Exception {
    if (interval != null && !(interval > 0)) {
      throw new BadInputException("--interval must be a positive number of seconds, not " + interval);
    }
    if (count != null && interval == null) {
      throw new BadInputException("--count counts looks taken every --interval; give --interval SECONDS too");
    }
    if (count != null && count < 1) {
      throw new BadInputException("--count must be at least 1, not " + count);
    }
    InventoryReader.Scope scope = scopeOptions.resolve();
    InventoryReader reader = InventoryReader.ofHost(RequestedBacklogBook.load(stateFile));
    PrintWriter out = spec.commandLine().getOut();
    ObjectMapper mapper = Json.mapper();
    InventoryTable table = new InventoryTable(scope.port() == null);

    Inventory previous = null;
    int looks = 0;
    while (true) {
      Inventory now = reader.read(scope);
      if (previous != null) {
        now = now.comparedWith(previous);
      }
      if (json) {
        out.println(mapper.writeValueAsString(now));
      } else {
        if (looks > 0) {
          out.println();
        }
        table.write(now, out);
      }
      out.flush();
      looks++;
      previous = now;
      if (interval == null || (count != null && looks >= count)) {
        return ExitCode.OK;
      }
      Thread.sleep((long) (interval * 1000));
    }
  }

}
