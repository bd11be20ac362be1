#!/usr/bin/env python3
"""In-kernel cost of a bpftrace program under N loopback connections (connect, accept, close), in ns per connection.

USAGE: shared_tracepoint_cost.py PROGRAM.bt N
Run stats are switched on with bpf(BPF_ENABLE_STATS), which holds them on while its fd is open and leaves
the kernel.bpf_stats_enabled sysctl (and anyone else's measurement) alone. Used to price the agent's merge
of probes that several concerns have on one tracepoint (bpf/README.md, "Cost"): handshakes.bt and
states.bt concatenated (bpf/test/concat.sh: two programs on inet_sock_set_state) against the same two
combined by the agent (one program).
"""
import ctypes, json, os, socket, subprocess, sys, threading, time
libc = ctypes.CDLL(None, use_errno=True)
attr = ctypes.create_string_buffer(128)  # union bpf_attr; enable_stats.type = BPF_STATS_RUN_TIME (0)
fd = libc.syscall(321, 32, attr, 128)  # __NR_bpf, BPF_ENABLE_STATS
if fd < 0:
    sys.exit("BPF_ENABLE_STATS failed: errno %d" % ctypes.get_errno())
prog, n = sys.argv[1], int(sys.argv[2])
bt = subprocess.Popen(["bpftrace", "-f", "json", prog, "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(4)
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(128); port = srv.getsockname()[1]
def accept():
    for _ in range(n):
        c, _ = srv.accept(); c.close()
t = threading.Thread(target=accept, daemon=True); t.start()
def stats():
    out = subprocess.check_output([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "progstats.py"), str(bt.pid)])
    return {p["id"]: p for p in json.loads(out)["progs"]}
try:
    before = stats()
except Exception:
    bt.kill(); raise
for _ in range(n):
    s = socket.socket(); s.connect(("127.0.0.1", port)); s.close()
t.join()
after = stats()
bt.terminate(); bt.wait()
total_ns = sum(after[i]["run_time_ns"] - before[i]["run_time_ns"] for i in after)
runs = sum(after[i]["run_cnt"] - before[i]["run_cnt"] for i in after)
print(json.dumps({"program": os.path.basename(prog), "connections": n, "bpf_runs": runs, "bpf_ns": total_ns,
                  "ns_per_connection": round(total_ns / n), "s_per_100k": round(total_ns / n * 1e5 / 1e9, 4)}))
