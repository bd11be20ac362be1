#!/usr/bin/env bash
# syn_flood.sh - a 3 s SYN flood with spoofed sources at a listener, in a namespace.
#
# USAGE: syn_flood.sh 0|1    (net.ipv4.tcp_syncookies in the namespace)
#
# The namespace has only lo and no route out, so the SYN-ACKs to the spoofed
# sources go nowhere and every request stays half-open in the SYN queue until
# it times out: the listener retransmits SYN-ACKs (synack.bt). With cookies 0
# the SYN queue overflows (nstat TCPReqQFullDrop); with cookies 1 the listener
# answers with cookies instead (TCPReqQFullDoCookies, SyncookiesSent) and
# keeps no state for them. The flood is `timeout 3 hping3 -i u100` (about
# 10,000 SYNs/s for 3 s), to 127.0.0.1 only.
source "$(dirname "$0")/lib.sh"

COOKIES=${1:?usage: $0 0|1}
NS=bltest-tp-synflood
PORT=8080
read -r -a PROGRAMS <<<"${BT_PROGRAMS:-handshakes synack drops resets states}"   # BT_PROGRAMS: other programs (e.g. variants) to run here
ns_create $NS
ip netns exec $NS sysctl -qw net.ipv4.tcp_syncookies="$COOKIES"
log "netns $NS inode $(ns_inode $NS), tcp_syncookies=$COOKIES"

bt_start_programs "${PROGRAMS[@]}"
nstat_snap $NS "$WORK/nstat.before"
timeout 30 ip netns exec $NS python3 "$TEST_DIR/server.py" --port $PORT --backlog 1024 --mode accept-close --duration 9 &
srv=$!
sleep 0.5
ip netns exec $NS timeout 3 hping3 -q -S -p $PORT -i u100 --rand-source 127.0.0.1 2>&1 | tail -3 >&2 || true
# a legitimate client during the aftermath: does it still get through?
timeout 10 ip netns exec $NS python3 "$TEST_DIR/connect_many.py" --port $PORT --count 5 --hold 1 >&2
log "ss -ltnmH in $NS:"
ip netns exec $NS ss -ltnmH "sport = :$PORT" >&2
wait $srv
sleep $((INTERVAL_S + 1))
nstat_snap $NS "$WORK/nstat.after"
bt_stop
log "nstat deltas in $NS:"
nstat_delta "$WORK/nstat.before" "$WORK/nstat.after" TcpExtListenOverflows TcpExtListenDrops \
    TcpExtTCPReqQFullDrop TcpExtTCPReqQFullDoCookies TcpExtSyncookiesSent TcpExtSyncookiesRecv \
    TcpExtSyncookiesFailed TcpPassiveOpens TcpActiveOpens TcpExtTCPSynRetrans TcpOutRsts TcpRetransSegs \
    TcpExtTCPTimeouts IpOutNoRoutes >&2
summarize "${PROGRAMS[@]}"
record_programs syn-flood-cookies$COOKIES "${PROGRAMS[@]}"
