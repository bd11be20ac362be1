package dev.backlogagent.diagnosis;

import dev.backlogagent.listener.Trouble;

/**
 * One thing the diagnosis found at a listener.
 *
 * @param count how many, in the trouble's unit ({@link Trouble#unit()})
 * @param pace for an accept-queue overflow, what the application did; else {@link AcceptPace#UNKNOWN}
 * @param accepts connections accepted during the interval, -1 when not observed
 * @param shared true when these drops are this listener's own (sk_drops) but their kind is shared with
 *     other listeners of the namespace in a way the evidence cannot split (see {@link NamespaceFinding})
 */
public record Finding(Trouble trouble, long count, AcceptPace pace, long accepts, boolean shared) {
  public static Finding of(Trouble trouble, long count) {
    return new Finding(trouble, count, AcceptPace.UNKNOWN, -1, false);
  }
}
