package dev.backlogagent.bpf;

import dev.backlogagent.kernel.Tier;
import java.util.ArrayList;
import java.util.List;

/**
 * Which program serves a concern on this host, chosen by what the kernel offers (the tier's attach kinds,
 * fentry, the tracepoints' fields), never by version numbers; or why none can.
 *
 * @param concern what is watched
 * @param variant the program to run, or null when none can
 * @param main whether it is the tier's preferred program (else a variant, named for what the kernel lacks)
 * @param reason why no program runs (when {@code variant} is null), or why the preferred one does not fit
 * @param fallbacks the variants after the chosen one that fit too, in order: tried when it does not attach
 */
public record ProgramChoice(Concern concern, ProgramVariant variant, boolean main, String reason,
    List<ProgramVariant> fallbacks) {

  public ProgramChoice {
    fallbacks = fallbacks == null ? List.of() : List.copyOf(fallbacks);
  }

  ProgramChoice(Concern concern, ProgramVariant variant, boolean main, String reason) {
    this(concern, variant, main, reason, List.of());
  }

  /** Whether a program is to run for this concern. */
  public boolean runs() {
    return variant != null;
  }

  /**
   * One choice per concern, in {@link Concern} order. A concern the tier does not run, or that the user did
   * not ask for ({@code states}), is a choice with no program and its reason.
   */
  public static List<ProgramChoice> choose(Tier tier, boolean fentry, boolean states, TracepointFormats formats) {
    List<ProgramChoice> choices = new ArrayList<>();
    for (Concern concern : Concern.values()) {
      choices.add(choose(concern, tier, fentry, states, formats));
    }
    return choices;
  }

  static ProgramChoice choose(Concern concern, Tier tier, boolean fentry, boolean states, TracepointFormats formats) {
    if (tier != Tier.TRACEPOINT && tier != Tier.KPROBE) {
      return new ProgramChoice(concern, null, false, "no BPF at tier " + tier.label());
    }
    if (concern == Concern.STATES && !states) {
      return new ProgramChoice(concern, null, false, ConcernStatus.NOT_ASKED);
    }
    ProgramVariant main = concern.main(tier);
    if (main == null) {
      return new ProgramChoice(concern, null, false, "needs the kprobe tier (this host runs " + tier.label()
          + "); nstat ListenOverflows, TCPReqQFullDrop and the listeners' sk_drops count refused SYNs instead");
    }
    String whyNotMain = null;
    ProgramVariant chosen = null;
    List<ProgramVariant> fallbacks = new ArrayList<>();
    for (ProgramVariant variant : concern.variants()) {
      if (!variant.tiers().contains(tier)) {
        continue;
      }
      String misfit = variant.fentry() && !fentry ? "fentry does not attach here" : variant.misfit(formats);
      if (misfit == null && chosen == null) {
        chosen = variant;
      } else if (misfit == null) {
        fallbacks.add(variant);
      } else if (chosen == null && whyNotMain == null) {
        whyNotMain = misfit;
      }
    }
    return chosen == null ? new ProgramChoice(concern, null, false, whyNotMain)
        : new ProgramChoice(concern, chosen, chosen.equals(main), whyNotMain, fallbacks);
  }
}
