#!/usr/bin/env python3
"""Per-program BPF run statistics of one process (bpftrace), as JSON on stdout.

USAGE: progstats.py PID
Finds the process's BPF programs through /proc/PID/fdinfo (prog_id) and asks
`bpftool prog show id N -j` for run_time_ns and run_cnt, which the kernel
counts only while kernel.bpf_stats_enabled=1. Only this process's programs
count: other sessions may share this kernel and load programs of their own.
"""
import json
import os
import subprocess
import sys


def main(pid):
    ids = set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    if line.startswith("prog_id:"):
                        ids.add(int(line.split()[1]))
        except OSError:
            pass
    progs = []
    for i in sorted(ids):
        p = json.loads(subprocess.check_output(["bpftool", "prog", "show", "id", str(i), "-j"]))
        progs.append({"id": i, "name": p.get("name"), "run_time_ns": p.get("run_time_ns", 0),
                      "run_cnt": p.get("run_cnt", 0)})
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime (fields 14, 15)
    json.dump({"pid": int(pid), "cpu_s": ticks / os.sysconf("SC_CLK_TCK"), "progs": progs}, sys.stdout)
    print()


if __name__ == "__main__":
    main(sys.argv[1])
