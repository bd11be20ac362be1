#!/usr/bin/env bash
# slow_accept.sh - a listener that sleeps 200-400 ms before each accept.
#
# USAGE: slow_accept.sh [6]
#   6: the listener is dual-stack [::]:8080 and the clients connect to ::1
#      (recorded as *-slow-accept-ipv6)
#
# 20 clients connect at once to a listener bound to 0.0.0.0:8080 (backlog 16);
# it accepts one every 200-400 ms, so the k-th connection waits about k * 0.3 s
# in the accept queue. acceptwait.bt times each wait (handshake to accept) and
# prints slow_accept lines (threshold 100 ms, one per listener per interval).
# The server logs its accept times and the client the time its connects were
# issued, on the same clock (CLOCK_MONOTONIC), so the expected waits are known.
# Its key is the listener's bound address 0.0.0.0, while handshakes.bt keys the
# same connections by their local address 127.0.0.1.
source "$(dirname "$0")/lib.sh"

NS=bltest-tp-slow
PORT=8080
LISTEN_ADDR=0.0.0.0 CONNECT_ADDR=127.0.0.1 situation=slow-accept
if [ "${1:-}" = 6 ]; then LISTEN_ADDR=:: CONNECT_ADDR=::1 situation=slow-accept-ipv6; fi
read -r -a PROGRAMS <<<"${BT_PROGRAMS:-acceptwait handshakes states}"   # BT_PROGRAMS: other programs (e.g. variants) to run here
ns_create $NS
log "netns $NS inode $(ns_inode $NS)"

bt_start_programs "${PROGRAMS[@]}"
timeout 30 ip netns exec $NS python3 "$TEST_DIR/server.py" --addr $LISTEN_ADDR --port $PORT --backlog 16 \
    --mode slow --delay-ms 200-400 --duration 9 --log-accepts >"$WORK/server.log" &
srv=$!
sleep 0.5
timeout 30 ip netns exec $NS python3 "$TEST_DIR/connect_many.py" --addr $CONNECT_ADDR --port $PORT --count 20 --hold 8 >"$WORK/client.log"
wait $srv
sleep $((INTERVAL_S + 1))
bt_stop
cat "$WORK/client.log" >&2
python3 - "$WORK/client.log" "$WORK/server.log" <<'PY' >&2
import sys
t0 = int(next(l.split()[1] for l in open(sys.argv[1]) if l.startswith("connects-issued-at")))
waits = [(int(l.split()[1]) - t0) // 1000 for l in open(sys.argv[2]) if l.startswith("accepted-at")]
print("expected waits (us, accept - connects issued):", waits)
print("connects issued at (CLOCK_MONOTONIC ns):", t0)
PY
summarize "${PROGRAMS[@]}"
record_programs $situation "${PROGRAMS[@]}"
