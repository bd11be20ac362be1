#!/usr/bin/env bash
# truncation.sh - listen(1024) in a namespace with net.core.somaxconn=64.
#
# Two listeners, 127.0.0.1:8080 and [::]:8081 (dual-stack), both listen(1024).
# Expect: listen.bt prints requested_backlog 1024, backlog 64 for each, and
# `ss -ltnH` in that namespace shows Send-Q 64 for both.
source "$(dirname "$0")/lib.sh"

NS=bltest-tp-trunc
PORT=8080
ns_create $NS
ip netns exec $NS sysctl -qw net.core.somaxconn=64
log "netns $NS inode $(ns_inode $NS)"

bt_start "$WORK/listen.jsonl" "$BPF_DIR/listen.bt"
timeout 10 ip netns exec $NS python3 "$TEST_DIR/server.py" --port $PORT --backlog 1024 --duration 2 &
srv4=$!
timeout 10 ip netns exec $NS python3 "$TEST_DIR/server.py" --addr :: --port $((PORT + 1)) --backlog 1024 --duration 2 &
srv6=$!
sleep 1
log "ss -ltnH in $NS:"; ip netns exec $NS ss -ltnH >&2
wait $srv4 $srv6
bt_stop
grep '"ev' "$WORK/listen.jsonl" >&2 || true
record "$WORK/listen.jsonl" listen-somaxconn-truncation
