#!/usr/bin/env bash
# ack_overflow.sh - third ACKs dropped because the accept queue filled after the SYN.
#
# USAGE: ack_overflow.sh [abort]
#   abort: set net.ipv4.tcp_abort_on_overflow=1 in the namespace (the listener
#          answers an overflowing third ACK with a reset instead of dropping it)
#
# On plain loopback each handshake completes before the next SYN is sent, so
# the queue never overflows at the third ACK (see accept_overflow.sh). Here a
# token bucket on lo (tbf: no netem on this kernel) paces packets, so a burst
# of SYNs all reach the listener before any third ACK does:
#   backlog 4, never accept; 3 connects fill the queue to 3; then 10 connects:
#   5 SYNs fit the SYN queue (its limit is also the backlog), 5 get SYN cookies
#   (tcp_syncookies=1); 2 third ACKs still fit the accept queue, the other 3
#   overflow (TCP_LISTEN_OVERFLOW) and so do the 5 cookie ACKs; the listener
#   retransmits SYN-ACKs for its 3 requests and their ACKs overflow again.
source "$(dirname "$0")/lib.sh"

MODE=${1:-drop}
NS=bltest-tp-ackq
PORT=8080
read -r -a PROGRAMS <<<"${BT_PROGRAMS:-handshakes synack drops resets states}"   # BT_PROGRAMS: other programs (e.g. variants) to run here
ns_create $NS
ip netns exec $NS tc qdisc add dev lo root tbf rate 64kbit burst 100 limit 200000
situation=ack-overflow
if [ "$MODE" = abort ]; then
    ip netns exec $NS sysctl -qw net.ipv4.tcp_abort_on_overflow=1
    situation=ack-overflow-abort
fi
log "netns $NS inode $(ns_inode $NS), $situation"

bt_start_programs "${PROGRAMS[@]}"
nstat_snap $NS "$WORK/nstat.before"
timeout 30 ip netns exec $NS python3 "$TEST_DIR/server.py" --port $PORT --backlog 4 --mode never --duration 12 &
srv=$!
sleep 0.5
timeout 30 ip netns exec $NS python3 "$TEST_DIR/connect_many.py" --port $PORT --count 3 --hold 10 >&2 &
first=$!
sleep 1
timeout 30 ip netns exec $NS python3 "$TEST_DIR/connect_many.py" --port $PORT --count 10 --hold 8 >&2
wait $first
log "ss -ltnmH in $NS (clients closed, server still listening):"
ip netns exec $NS ss -ltnmH "sport = :$PORT" >&2
wait $srv
sleep $((INTERVAL_S + 1))
nstat_snap $NS "$WORK/nstat.after"
bt_stop
log "nstat deltas in $NS:"
nstat_delta "$WORK/nstat.before" "$WORK/nstat.after" TcpExtListenOverflows TcpExtListenDrops \
    TcpExtTCPReqQFullDrop TcpExtTCPReqQFullDoCookies TcpExtSyncookiesSent TcpExtSyncookiesRecv \
    TcpExtSyncookiesFailed TcpPassiveOpens TcpActiveOpens TcpExtTCPSynRetrans TcpOutRsts TcpExtTCPAbortOnData >&2
summarize "${PROGRAMS[@]}"
record_programs $situation "${PROGRAMS[@]}"
