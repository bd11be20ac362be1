#!/usr/bin/env bash
# concat_all.sh - every bpf/*.bt program concatenated into ONE bpftrace, as the agent runs them.
#
# Proves that the concatenation (concat.sh: END blocks merged, no BEGIN, no
# #include) compiles, attaches and prints every program's lines in one stream.
# Workload, in one namespace with net.core.somaxconn=64: a listener on
# 0.0.0.0:8080 asking listen(1024) that accepts every 200-400 ms, 8 clients at
# once (listen, handshakes, slow_accept, accept_wait_us, states), and 20
# connects to the closed port 9 (reset, resets_suppressed).
source "$(dirname "$0")/lib.sh"

NS=bltest-tp-concat
PORT=8080
# Variants (*-no-*.bt) replace their main program on other kernels: not concatenated with it.
MAIN_PROGRAMS=$(ls "$BPF_DIR"/*.bt | grep -v -- "-no-")
"$TEST_DIR/concat.sh" $MAIN_PROGRAMS >"$WORK/all.bt"
log "concatenated $(echo "$MAIN_PROGRAMS" | wc -l) programs: $(wc -l <"$WORK/all.bt") lines"
ns_create $NS
ip netns exec $NS sysctl -qw net.core.somaxconn=64
log "netns $NS inode $(ns_inode $NS)"

bt_start "$WORK/all.jsonl" "$WORK/all.bt" "$INTERVAL_S" 100
timeout 20 ip netns exec $NS python3 "$TEST_DIR/server.py" --addr 0.0.0.0 --port $PORT --backlog 1024 \
    --mode slow --delay-ms 200-400 --duration 4 >/dev/null &
srv=$!
sleep 0.5
timeout 20 ip netns exec $NS python3 "$TEST_DIR/connect_many.py" --port $PORT --count 8 --hold 3 >/dev/null
timeout 20 ip netns exec $NS python3 -c '
import socket
for _ in range(20):
    s = socket.socket()
    try: s.connect(("127.0.0.1", 9))
    except ConnectionRefusedError: pass
    s.close()'
wait $srv
sleep $((INTERVAL_S + 1))
bt_stop
python3 "$TEST_DIR/summarize.py" "$WORK/all.jsonl" >&2
record "$WORK/all.jsonl" concat-all-mixed
