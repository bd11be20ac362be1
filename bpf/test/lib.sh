# Shared helpers for the bpf/ reproducers. Source it; do not run it.
#
# Every reproducer sends traffic only to loopback, inside network namespaces
# it creates itself (named bltest-tp-*), bounded by `timeout`, and deletes
# them on exit. bpftrace processes are started here and stopped by their pid.

set -euo pipefail

TEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BPF_DIR=$(cd "$TEST_DIR/.." && pwd)
REPO_DIR=$(cd "$BPF_DIR/.." && pwd)
RECORDED_DIR=${RECORDED_DIR:-$REPO_DIR/src/test/resources/bpf/recorded}
WORK=${WORK:-$(mktemp -d /tmp/bltest-tp.XXXXXX)}
INTERVAL_S=${INTERVAL_S:-1}

BT_PIDS=()
NETNS_CREATED=()

log() { printf '== %s\n' "$*" >&2; }

ns_create() { # NAME: a namespace with only lo, up
    ip netns add "$1"
    NETNS_CREATED+=("$1")
    ip netns exec "$1" ip link set lo up
}

ns_inode() { # NAME -> the namespace's inode, as BPF sees it in ns.inum
    stat -L -c %i "/run/netns/$1"
}

bt_start() { # OUT PROGRAM [ARGS...]: start bpftrace, wait until attached
    local out=$1; shift
    # BPFTRACE: another bpftrace, e.g. bpf/test/bpftrace-debian13.sh (Debian 13's 0.23).
    timeout -s INT 300 ${BPFTRACE:-bpftrace} -f json "$@" >"$out" 2>"$out.stderr" &
    BT_PIDS+=($!)
    local i
    for i in $(seq 1 300); do
        if grep -q '"attached_probes"' "$out" 2>/dev/null; then return 0; fi
        if ! kill -0 "${BT_PIDS[-1]}" 2>/dev/null; then
            cat "$out.stderr" >&2; return 1
        fi
        sleep 0.1
    done
    log "bpftrace did not attach: $*"; return 1
}

bt_stop() { # stop every bpftrace this script started, by pid, with SIGINT (runs END)
    local p
    for p in "${BT_PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
    for p in "${BT_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    BT_PIDS=()
}

bt_start_programs() { # PROG... : one bpftrace per bpf/PROG.bt, stdout in $WORK/PROG.jsonl
    local p
    for p in "$@"; do
        bt_start "$WORK/$p.jsonl" "$BPF_DIR/$p.bt" "$INTERVAL_S" ${BT_EXTRA_ARGS:-}
    done
}

record_programs() { # SITUATION PROG... : keep $WORK/PROG.jsonl as PROG-SITUATION.jsonl
    local situation=$1 p; shift
    for p in "$@"; do record "$WORK/$p.jsonl" "$p-$situation"; done
}

summarize() { # PROG... : what each program saw, summed over the run
    local p files=()
    for p in "$@"; do files+=("$WORK/$p.jsonl"); done
    python3 "$TEST_DIR/summarize.py" "${files[@]}" >&2
}

nstat_snap() { # NS OUT: absolute TcpExt/Tcp counters of namespace NS
    ip netns exec "$1" nstat -az >"$2"
}

nstat_delta() { # BEFORE AFTER [NAME...]: print the counters that changed
    awk 'NR==FNR { if ($1 !~ /^#/) b[$1]=$2; next }
         $1 !~ /^#/ { d = $2 - b[$1]; if (d != 0) print $1, d }' "$1" "$2" |
        { if [ $# -gt 2 ]; then shift 2; grep -E "^($(IFS='|'; echo "$*")) " || true; else cat; fi; }
}

cleanup() {
    bt_stop
    local ns
    for ns in "${NETNS_CREATED[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    NETNS_CREATED=()
}
trap cleanup EXIT

record() { # SRC NAME: keep bpftrace's stdout as a recorded output
    mkdir -p "$RECORDED_DIR"
    cp "$1" "$RECORDED_DIR/$2.jsonl"
    log "recorded $RECORDED_DIR/$2.jsonl ($(wc -l <"$1") lines)"
}
