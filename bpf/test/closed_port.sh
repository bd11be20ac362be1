#!/usr/bin/env bash
# closed_port.sh - connects to a port nobody listens on (a listener that is down).
#
# 100 connects to 127.0.0.1:9 and 100 to [::1]:9 in a namespace: the kernel
# answers each SYN with a reset from no socket (state 0, reason NO_SOCKET).
# resets.bt prints one line per endpoint per interval and counts the rest in
# @resets_suppressed; lines + suppressed = nstat TcpOutRsts.
source "$(dirname "$0")/lib.sh"

NS=bltest-tp-closed
read -r -a PROGRAMS <<<"${BT_PROGRAMS:-resets states}"   # BT_PROGRAMS: other programs (e.g. variants) to run here
ns_create $NS
log "netns $NS inode $(ns_inode $NS)"

bt_start_programs "${PROGRAMS[@]}"
nstat_snap $NS "$WORK/nstat.before"
timeout 20 ip netns exec $NS python3 - <<'PY'
import socket
refused = 0
for addr, family in (("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6)):
    for _ in range(100):
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.connect((addr, 9))
        except ConnectionRefusedError:
            refused += 1
        s.close()
print("refused", refused, flush=True)
PY
sleep $((INTERVAL_S + 1))
nstat_snap $NS "$WORK/nstat.after"
bt_stop
log "nstat deltas in $NS:"
nstat_delta "$WORK/nstat.before" "$WORK/nstat.after" TcpOutRsts TcpActiveOpens TcpAttemptFails >&2
summarize "${PROGRAMS[@]}"
record_programs closed-port "${PROGRAMS[@]}"
