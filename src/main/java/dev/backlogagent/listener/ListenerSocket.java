package dev.backlogagent.listener;

/**
 * A listening socket's identity: its network namespace and its inode, stable for the socket's life. Not
 * where it listens ({@link dev.backlogagent.decode.ListenerKey}): a server that stops and another that
 * listens on the same port later are two sockets.
 */
public record ListenerSocket(long netns, long inode) {}
