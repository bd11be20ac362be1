package dev.backlogagent.listener;

import com.fasterxml.jackson.annotation.JsonIgnore;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Every listener of the host and the namespaces they live in, as read at one moment.
 *
 * @param skipped one line per namespace or process that could not be read (it exited, or access was
 *     refused); the rest of the inventory is still whole
 */
public record Inventory(
    List<NetNamespace> namespaces,
    List<Listener> listeners,
    @JsonIgnore Instant takenAt,
    @JsonIgnore List<String> skipped) {

  /** Worst first: full, then fuller queues, then more drops; ties by namespace and port for a stable order. */
  public static final Comparator<Listener> WORST_FIRST =
      Comparator.comparing(Listener::full)
          .reversed()
          .thenComparing(Comparator.comparingDouble(Listener::fill).reversed())
          .thenComparing(Comparator.comparingLong(Listener::drops).reversed())
          .thenComparingLong((Listener l) -> l.key().netns())
          .thenComparingInt(l -> l.key().port())
          .thenComparing(l -> l.key().address());

  public Optional<NetNamespace> namespace(long netns) {
    return namespaces.stream().filter(n -> n.netns() == netns).findFirst();
  }

  /**
   * Marks as {@link ListenerFlag#DROPPING} each listener whose drops rose since the previous inventory;
   * a listener is the same one when its socket inode is.
   */
  public Inventory comparedWith(Inventory previous) {
    Map<Long, Long> dropsBefore = new HashMap<>();
    for (Listener l : previous.listeners) {
      dropsBefore.put(l.socketInode(), l.drops());
    }
    List<Listener> marked = new ArrayList<>(listeners.size());
    for (Listener l : listeners) {
      Long before = dropsBefore.get(l.socketInode());
      if (before != null && l.drops() > before) {
        EnumSet<ListenerFlag> flags = l.flags().isEmpty() ? EnumSet.noneOf(ListenerFlag.class) : EnumSet.copyOf(l.flags());
        flags.add(ListenerFlag.DROPPING);
        marked.add(l.withFlags(flags));
      } else {
        marked.add(l);
      }
    }
    return new Inventory(namespaces, marked, takenAt, skipped);
  }
}
