#!/usr/bin/env bash
# accept_overflow.sh - a listener with backlog 4 that never accepts, 40 connects.
#
# On loopback every handshake completes before the next SYN is sent, so the
# accept queue fills with 5 (backlog + 1) and every later SYN is refused:
# nstat ListenOverflows/ListenDrops and the listener's sk_drops (ss -m "dN")
# count the refused SYNs and their retransmits; handshakes.bt sees exactly 5
# handshakes with depths 0..4; drops.bt sees nothing (refused SYNs are consumed,
# not dropped with a reason).
source "$(dirname "$0")/lib.sh"

NS=bltest-tp-acceptq
PORT=8080
read -r -a PROGRAMS <<<"${BT_PROGRAMS:-listen handshakes synack drops resets states}"   # BT_PROGRAMS: other programs (e.g. variants) to run here
ns_create $NS
log "netns $NS inode $(ns_inode $NS)"

bt_start_programs "${PROGRAMS[@]}"
nstat_snap $NS "$WORK/nstat.before"
timeout 20 ip netns exec $NS python3 "$TEST_DIR/server.py" --port $PORT --backlog 4 --mode never --duration 8 &
srv=$!
sleep 0.5
timeout 20 ip netns exec $NS python3 "$TEST_DIR/connect_many.py" --port $PORT --count 40 --hold 5 >&2
log "ss -ltnmH in $NS (before the server closes):"
ip netns exec $NS ss -ltnmH "sport = :$PORT" >&2
wait $srv
sleep $((INTERVAL_S + 1))
nstat_snap $NS "$WORK/nstat.after"
bt_stop
log "nstat deltas in $NS:"
nstat_delta "$WORK/nstat.before" "$WORK/nstat.after" TcpExtListenOverflows TcpExtListenDrops \
    TcpExtTCPReqQFullDrop TcpExtTCPReqQFullDoCookies TcpPassiveOpens TcpActiveOpens TcpExtTCPSynRetrans TcpOutRsts >&2
summarize "${PROGRAMS[@]}"
record_programs accept-overflow "${PROGRAMS[@]}"
