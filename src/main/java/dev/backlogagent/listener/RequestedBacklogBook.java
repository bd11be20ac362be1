package dev.backlogagent.listener;

import dev.backlogagent.decode.TraceEvent;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Remembers the backlog each listener asked for, from the listen() calls BPF saw. The kernel keeps only
 * the clamped value, so this is the only place the request survives. Bounded: a host that opens and
 * closes listeners forever must not grow the agent without end.
 */
public final class RequestedBacklogBook implements RequestedBacklogs {
  private static final int MAX_ENTRIES = 65_536;

  private record Key(long netns, String address, int port) {}

  private final ConcurrentHashMap<Key, Long> requested = new ConcurrentHashMap<>();

  public void record(TraceEvent.ListenCall call) {
    if (requested.size() >= MAX_ENTRIES) {
      requested.clear(); // rare; the next listen() calls refill it
    }
    requested.put(new Key(call.key().netns(), call.key().address(), call.key().port()), call.requestedBacklog());
  }

  @Override
  public Long requested(long netns, String address, int port) {
    return requested.get(new Key(netns, address, port));
  }
}
