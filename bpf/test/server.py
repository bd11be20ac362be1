#!/usr/bin/env python3
"""TCP listener for the bpf/ reproducers.

Listens on ADDR:PORT with the requested backlog and then, by --mode:
  never         never accepts (the accept queue fills up and overflows)
  slow          sleeps a random --delay-ms MIN-MAX before each accept, then
                closes the accepted connection
  accept-close  accepts and closes as fast as it can
Prints one line "listening FAMILY ADDR PORT" on stdout when ready, and exits
after --duration seconds. Times are CLOCK_MONOTONIC ns, the clock of BPF's
nsecs, so they compare directly with handshake_ns of acceptwait.bt.
"""
import argparse
import random
import socket
import sys
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--addr", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--backlog", type=int, required=True)
    p.add_argument("--mode", choices=["never", "slow", "accept-close"], default="never")
    p.add_argument("--delay-ms", default="200-400")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--log-accepts", action="store_true",
                   help='print "accepted-at NS PEERPORT" (CLOCK_MONOTONIC) per accept')
    a = p.parse_args()

    family = socket.AF_INET6 if ":" in a.addr else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.addr, a.port))
    s.listen(a.backlog)
    print("listening", family.value, a.addr, a.port, flush=True)

    deadline = time.monotonic() + a.duration
    lo, hi = (int(x) for x in a.delay_ms.split("-"))
    accepted = 0
    if a.mode == "never":
        time.sleep(a.duration)
    else:
        s.settimeout(0.2)
        while time.monotonic() < deadline:
            if a.mode == "slow":
                time.sleep(random.uniform(lo, hi) / 1000.0)
            try:
                c, _ = s.accept()
            except socket.timeout:
                continue
            accepted += 1
            if a.log_accepts:
                print("accepted-at", time.monotonic_ns(), c.getpeername()[1], flush=True)
            c.close()
    print("accepted", accepted, flush=True)
    s.close()


if __name__ == "__main__":
    sys.exit(main())
