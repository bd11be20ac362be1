#!/usr/bin/env bash
# storm_cost.sh - cost of bpftrace programs under a loopback connection storm.
#
# USAGE: storm_cost.sh [ROUNDS] [STORM_S] [LABEL=PROGRAM ...]     (defaults 3 and 4)
#   without LABEL=PROGRAM: states.bt, handshakes.bt, and both concatenated into
#   one bpftrace (round 1's outputs are recorded as fixtures); with them, those
#   programs (e.g. variants of one, to price its parts), nothing recorded.
#   BPFTRACE: another bpftrace, e.g. bpf/test/bpftrace-debian13.sh (0.23).
#
# In a namespace: the C accept/close server and connect/close client of
# storm.c (SO_LINGER 0) run for STORM_S seconds, with no tracer and with each
# program; configurations alternate, ROUNDS times, because this machine's
# storm rate varies 10-20 % between runs.
# Per run: connections/s; for the tracer's own BPF programs (found through
# /proc/PID/fdinfo) run_cnt and run_time_ns deltas from `bpftool prog show`
# with kernel.bpf_stats_enabled=1 (restored afterwards), and the bpftrace
# process's CPU (utime + stime). Prints one line per run, then averages (ns
# per run of each program and s of BPF per 100k connections).
source "$(dirname "$0")/lib.sh"

ROUNDS=${1:-3}
STORM_S=${2:-4}
NS=bltest-tp-storm
PORT=9000
gcc -O2 -Wall -o "$WORK/storm" "$TEST_DIR/storm.c"
"$TEST_DIR/concat.sh" "$BPF_DIR/handshakes.bt" "$BPF_DIR/states.bt" >"$WORK/handshakes+states.bt"
ns_create $NS

old_stats=$(sysctl -n kernel.bpf_stats_enabled)
restore_stats() { sysctl -qw kernel.bpf_stats_enabled="$old_stats"; cleanup; }
trap restore_stats EXIT
sysctl -qw kernel.bpf_stats_enabled=1

CONFIGS=("none=")
if [ $# -gt 2 ]; then
    CONFIGS+=("${@:3}")
else
    CONFIGS+=("states=$BPF_DIR/states.bt" "handshakes=$BPF_DIR/handshakes.bt" "handshakes+states=$WORK/handshakes+states.bt")
fi

RESULTS="$WORK/results.jsonl"
for round in $(seq 1 "$ROUNDS"); do
    for entry in "${CONFIGS[@]}"; do
        config=${entry%%=*}
        prog=${entry#*=}
        bpid=""
        if [ -n "$prog" ]; then
            bt_start "$WORK/$config.$round.jsonl" "$prog" "$INTERVAL_S"
            bpid=$(pgrep -P "${BT_PIDS[-1]}" bpftrace)
            python3 "$TEST_DIR/progstats.py" "$bpid" >"$WORK/before.json"
        fi
        timeout $((STORM_S + 5)) ip netns exec $NS "$WORK/storm" server $PORT $((STORM_S + 1)) >/dev/null &
        srv=$!
        sleep 0.3
        out=$(timeout $((STORM_S + 5)) ip netns exec $NS "$WORK/storm" client 127.0.0.1 $PORT "$STORM_S")
        wait $srv
        if [ -n "$bpid" ]; then
            python3 "$TEST_DIR/progstats.py" "$bpid" >"$WORK/after.json"
            bt_stop
        else
            echo '{"cpu_s": 0, "progs": []}' >"$WORK/before.json"; cp "$WORK/before.json" "$WORK/after.json"
        fi
        python3 - "$config" "$round" "$out" "$WORK/before.json" "$WORK/after.json" <<'PY' | tee -a "$RESULTS" >&2
import json, sys
config, rnd, out, before, after = sys.argv[1:6]
b, a = json.load(open(before)), json.load(open(after))
w = out.split()
conns, rate = int(w[1]), float(w[5].rstrip("/s"))
bp = {p["id"]: p for p in b["progs"]}
progs = {}
for p in a["progs"]:
    q = bp.get(p["id"], {"run_cnt": 0, "run_time_ns": 0})
    name = p["name"]
    d = progs.setdefault(name, {"run_cnt": 0, "run_time_ns": 0})
    d["run_cnt"] += p["run_cnt"] - q["run_cnt"]
    d["run_time_ns"] += p["run_time_ns"] - q["run_time_ns"]
print(json.dumps({"config": config, "round": int(rnd), "connections": conns, "rate_per_s": rate,
                  "bpftrace_cpu_s": round(a["cpu_s"] - b["cpu_s"], 2), "progs": progs}))
PY
    done
done

if [ $# -le 2 ]; then
    record "$WORK/states.1.jsonl" states-storm
    record "$WORK/handshakes.1.jsonl" handshakes-storm
    record "$WORK/handshakes+states.1.jsonl" concat-handshakes-states-storm
fi

python3 - "$RESULTS" <<'PY' >&2
import json, sys, collections
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    runs[r["config"]].append(r)
print(f'{"config":<20}{"conn/s":>9}{"events/conn":>12}{"ns/event":>10}{"kernel s/100k":>15}{"bpftrace s/100k":>17}')
for config, rs in runs.items():
    conns = sum(r["connections"] for r in rs)
    rate = sum(r["rate_per_s"] for r in rs) / len(rs)
    cnt = sum(p["run_cnt"] for r in rs for n, p in r["progs"].items() if n != "1")
    ns = sum(p["run_time_ns"] for r in rs for n, p in r["progs"].items() if n != "1")
    cpu = sum(r["bpftrace_cpu_s"] for r in rs)
    per_event = ns / cnt if cnt else 0
    print(f'{config:<20}{rate:>9.0f}{cnt / conns:>12.2f}{per_event:>10.0f}{ns / 1e9 / conns * 1e5:>15.3f}{cpu / conns * 1e5:>17.3f}')
    names = sorted({n for r in rs for n in r["progs"] if n != "1"})
    for n in names if len(names) > 1 else []:
        c = sum(r["progs"].get(n, {}).get("run_cnt", 0) for r in rs)
        t = sum(r["progs"].get(n, {}).get("run_time_ns", 0) for r in rs)
        if c:
            print(f'  {n:<18}{"":>9}{c / conns:>12.2f}{t / c:>10.0f}{t / 1e9 / conns * 1e5:>15.3f}')
PY
