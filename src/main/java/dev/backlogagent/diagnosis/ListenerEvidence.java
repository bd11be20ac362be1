package dev.backlogagent.diagnosis;

import java.util.Map;

/**
 * What one interval showed of one listener: the inventory's numbers before and after, and what the BPF
 * programs counted. Numbers only, so that the diagnosis is a pure function tested without a kernel.
 *
 * @param socket the socket's inode (names the listener in the findings)
 * @param queue accept-queue length at the interval's end
 * @param backlog effective backlog at the interval's end
 * @param queueBefore accept-queue length at the interval's start, -1 when the listener is new
 * @param drops how much the listener's sk_drops rose (exact: what ss's d column gained)
 * @param peakQueue the largest accept-queue length a handshake saw, -1 without handshakes
 * @param handshakes handshakes completed (connections put on the accept queue)
 * @param accepts connections accept()ed during the interval, -1 when accepts are not observed
 * @param synackRetransmits SYN-ACKs retransmitted
 * @param listenOverflowDrops packets freed with drop reason TCP_LISTEN_OVERFLOW (third ACKs of a full queue)
 * @param refused the kprobe tier's refusals by kind; empty at the tracepoint tier
 * @param synActiveRecently whether the listener had SYN-side activity (drops or SYN-ACK retransmits) in
 *     the last few intervals: the only way the tracepoint tier can name the listener that sends cookies
 */
public record ListenerEvidence(
    long socket,
    long queue,
    long backlog,
    long queueBefore,
    long drops,
    long peakQueue,
    long handshakes,
    long accepts,
    long synackRetransmits,
    long listenOverflowDrops,
    Map<RefusalKind, Long> refused,
    boolean synActiveRecently) {

  public ListenerEvidence {
    refused = Map.copyOf(refused);
  }

  /** Whether anything shows that the accept queue was full during the interval. */
  public boolean acceptQueueFull() {
    return queue > backlog
        || queueBefore > backlog
        || (peakQueue >= 0 && peakQueue >= backlog)
        || listenOverflowDrops > 0
        || refused(RefusalKind.ACCEPT) > 0;
  }

  public long refused(RefusalKind kind) {
    return refused.getOrDefault(kind, 0L);
  }

  /** Whether the kprobe tier classified this listener's refusals itself. */
  public boolean hasRefusals() {
    return refused.values().stream().anyMatch(n -> n > 0);
  }
}
