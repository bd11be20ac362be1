package dev.backlogagent.bpf;

import java.time.Duration;
import java.util.random.RandomGenerator;

/**
 * Capped, jittered exponential backoff for restarting a child: 1 s, 2 s, 4 s … up to the cap, each
 * spread by ±jitter so that several agents (or several children) do not restart in step.
 */
public final class Backoff {
  private final long initialMillis;
  private final long maxMillis;
  private final double jitter;
  private final RandomGenerator random;
  private int attempts;

  public Backoff(Duration initial, Duration max, double jitter, RandomGenerator random) {
    if (initial.isNegative() || initial.isZero() || max.compareTo(initial) < 0 || jitter < 0 || jitter >= 1) {
      throw new IllegalArgumentException("backoff needs 0 < initial <= max and 0 <= jitter < 1");
    }
    this.initialMillis = initial.toMillis();
    this.maxMillis = max.toMillis();
    this.jitter = jitter;
    this.random = random;
  }

  public static Backoff standard() {
    return new Backoff(Duration.ofSeconds(1), Duration.ofSeconds(60), 0.2, RandomGenerator.getDefault());
  }

  /** The wait before the next attempt; each call doubles the base until the cap. */
  public Duration next() {
    double base = Math.min((double) maxMillis, initialMillis * Math.pow(2, Math.min(attempts, 30)));
    attempts++;
    double spread = base * jitter * (2 * random.nextDouble() - 1);
    return Duration.ofMillis(Math.max(1, Math.round(Math.min(maxMillis, base + spread))));
  }

  /** Back to the initial wait: the child ran long enough to count as healthy. */
  public void reset() {
    attempts = 0;
  }

  public int attempts() {
    return attempts;
  }
}
