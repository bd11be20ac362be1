package dev.backlogagent.decode;

/**
 * A TCP state change, as the kernel numbers the states (kept as numbers so that a state newer than this
 * agent, e.g. BOUND_INACTIVE on 6.7+, is still counted).
 */
public record StateTransition(int from, int to) {
  public String fromName() {
    return TcpState.name(from);
  }

  public String toName() {
    return TcpState.name(to);
  }
}
