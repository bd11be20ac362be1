package dev.backlogagent.bpf;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonValue;
import java.util.Locale;

/**
 * What became of one concern on this host, for doctor, trace, run and the daemon's metrics: it runs (its
 * preferred program), runs as a variant, runs degraded (a variant that cannot tell everything), cannot run
 * (the kernel's or bpftrace's reason, in one line), or is off (not asked for).
 *
 * @param concern what is watched
 * @param state what became of it
 * @param program the program running for it (path under bpf/), or null
 * @param detail what is lost (degraded), why the preferred program does not fit (variant), or why nothing
 *     runs (cannot, off); null when it simply runs
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record ConcernStatus(Concern concern, State state, String program, String detail) {

  static final String NOT_ASKED = "not asked for";

  /** What became of a concern. */
  public enum State {
    RUNS,
    VARIANT,
    DEGRADED,
    CANNOT,
    OFF;

    @JsonValue
    public String label() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /** Whether a program of this concern is running. */
  public boolean running() {
    return state == State.RUNS || state == State.VARIANT || state == State.DEGRADED;
  }

  /** Its status in one line, e.g. "drops: degraded, runs drops-no-rx-sk.bt: no rx_sk in kfree_skb: …". */
  public String line() {
    String name = concern.label();
    return switch (state) {
      case RUNS -> name + ": runs (" + program + ")";
      case VARIANT -> name + ": runs as variant " + program + (detail == null ? "" : " (" + detail + ")");
      case DEGRADED -> name + ": degraded, runs " + program + ": " + detail;
      case CANNOT -> name + ": cannot: " + detail;
      case OFF -> name + ": off (" + detail + ")";
    };
  }

  /** The status of a choice once its program was tried: {@code attachFailure} is bpftrace's reason, or null. */
  static ConcernStatus of(ProgramChoice choice, String attachFailure) {
    if (!choice.runs()) {
      State state = ConcernStatus.NOT_ASKED.equals(choice.reason()) ? State.OFF : State.CANNOT;
      return new ConcernStatus(choice.concern(), state, null, choice.reason());
    }
    String program = choice.variant().file();
    if (attachFailure != null) {
      return new ConcernStatus(choice.concern(), State.CANNOT, null, program + " does not attach: " + attachFailure);
    }
    if (choice.main()) {
      return new ConcernStatus(choice.concern(), State.RUNS, program, null);
    }
    if (!choice.variant().lost().isEmpty()) {
      return new ConcernStatus(choice.concern(), State.DEGRADED, program, choice.variant().lost());
    }
    return new ConcernStatus(choice.concern(), State.VARIANT, program, choice.reason());
  }

  /** The status of a choice whose program did not attach ({@code failure}) while the fallback {@code ran} did. */
  static ConcernStatus ofFallback(ProgramChoice choice, ProgramVariant ran, String failure) {
    String why = choice.variant().file() + " does not attach: " + failure;
    return ran.lost().isEmpty()
        ? new ConcernStatus(choice.concern(), State.VARIANT, ran.file(), why)
        : new ConcernStatus(choice.concern(), State.DEGRADED, ran.file(), ran.lost() + " (" + why + ")");
  }
}
