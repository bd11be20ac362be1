package dev.backlogagent.listener;

import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.decode.TcpState;

/**
 * Resets sent from one local endpoint during an interval, in one state and for one reason (lines and
 * suppressed counts of resets.bt together).
 *
 * @param key the local endpoint (a listener's port, or a closed local port)
 * @param listener the listener the endpoint belongs to, or null for a port nobody listens on
 * @param state the socket's state, {@link TcpState#NO_SOCKET} when no socket sent it
 * @param reason the kernel's reset reason number (named from the tracepoint format by the writer)
 */
public record ResetCount(ListenerKey key, Listener listener, TcpState state, long reason, long count) {}
