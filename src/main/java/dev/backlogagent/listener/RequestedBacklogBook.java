package dev.backlogagent.listener;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.backlogagent.decode.TraceEvent;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Remembers the backlog each listener asked for, from the listen() calls BPF saw. The kernel keeps only
 * the clamped value, so this is the only place the request survives — and since a server calls listen()
 * once, at start, the book is kept in a state file: the agent that saw the call writes it, and a later
 * {@code backlog-agent listeners} reads it. Bounded, so a host that opens listeners forever cannot grow it
 * without end.
 */
public final class RequestedBacklogBook implements RequestedBacklogs {
  private static final int MAX_ENTRIES = 65_536;
  private static final System.Logger LOG = System.getLogger(RequestedBacklogBook.class.getName());

  /** One listen() call as kept in the state file. */
  public record Entry(long netns, String address, int port, long requested, long backlog) {}

  private record Key(long netns, String address, int port) {}

  private final ConcurrentHashMap<Key, Entry> entries = new ConcurrentHashMap<>();
  private final ObjectMapper mapper = new ObjectMapper();
  private volatile boolean changed;

  public void record(TraceEvent.ListenCall call) {
    if (entries.size() >= MAX_ENTRIES) {
      entries.clear(); // rare; the next listen() calls refill it
    }
    long netns = call.key().netns();
    String address = call.key().address();
    int port = call.key().port();
    entries.put(new Key(netns, address, port), new Entry(netns, address, port, call.requestedBacklog(), call.backlog()));
    changed = true;
  }

  @Override
  public Long requested(long netns, String address, int port, long backlog) {
    Entry e = entries.get(new Key(netns, address, port));
    return e == null || e.backlog() != backlog ? null : e.requested();
  }

  /** Reads a state file; a missing one is an empty book, an unreadable one is logged and skipped. */
  public static RequestedBacklogBook load(Path file) {
    RequestedBacklogBook book = new RequestedBacklogBook();
    if (file == null || !Files.isReadable(file)) {
      return book;
    }
    try {
      List<Entry> list = book.mapper.readValue(file.toFile(), new TypeReference<List<Entry>>() {});
      for (Entry e : list) {
        book.entries.put(new Key(e.netns(), e.address(), e.port()), e);
      }
    } catch (IOException e) {
      LOG.log(System.Logger.Level.WARNING, "ignoring unreadable state file {0}: {1}", file, e.getMessage());
    }
    return book;
  }

  /** Writes the state file when something changed since the last save (atomically: write, then rename). */
  public void saveIfChanged(Path file) {
    if (file == null || !changed) {
      return;
    }
    changed = false;
    try {
      Files.createDirectories(file.getParent());
      Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
      mapper.writeValue(tmp.toFile(), new ArrayList<>(entries.values()));
      Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      changed = true;
      LOG.log(System.Logger.Level.WARNING, "cannot write state file {0}: {1}", file, e.getMessage());
    }
  }
}
