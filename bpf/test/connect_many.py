#!/usr/bin/env python3
"""Opens COUNT non-blocking TCP connects to ADDR:PORT, holds them HOLD seconds.

Prints how many completed the handshake from the client's point of view
(a client counts a connection as established as soon as the SYN-ACK arrives,
even if the server later drops the third ACK because its accept queue is full).
"""
import argparse
import errno
import select
import socket
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--addr", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, default=40)
    p.add_argument("--hold", type=float, default=3.0)
    p.add_argument("--gap-ms", type=float, default=0.0)
    a = p.parse_args()

    family = socket.AF_INET6 if ":" in a.addr else socket.AF_INET
    socks = []
    for _ in range(a.count):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setblocking(False)
        rc = s.connect_ex((a.addr, a.port))
        if rc not in (0, errno.EINPROGRESS):
            print("connect error", errno.errorcode.get(rc, rc))
        socks.append(s)
        if a.gap_ms:
            time.sleep(a.gap_ms / 1000.0)
    print("connects-issued-at", time.monotonic_ns(), flush=True)
    time.sleep(a.hold)
    _, writable, _ = select.select([], socks, [], 0)
    ok = sum(1 for s in writable if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0)
    print("client-established", ok, "of", a.count, flush=True)
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
