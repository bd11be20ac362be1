#!/usr/bin/env python3
"""Summarize bpftrace -f json output of bpf/*.bt over a whole run.

For each map: counts summed over intervals (maps whose name contains "peak"
take the max), hist buckets summed. Events ("printf" lines whose text is a
JSON object) are counted by "ev" and the first few printed. Lines that do not
decode are counted, as the agent's decoder does.
"""
import collections
import json
import sys


def main(paths):
    for path in paths:
        maps = collections.defaultdict(collections.Counter)
        hists = collections.defaultdict(lambda: collections.defaultdict(collections.Counter))
        events = collections.defaultdict(list)
        flushes = collections.Counter()
        other = collections.Counter()
        undecodable = 0
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    obj = json.loads(line)
                except ValueError:
                    undecodable += 1
                    continue
                t = obj.get("type")
                if t == "map":
                    for name, kv in obj["data"].items():
                        flushes[name] += 1
                        if not isinstance(kv, dict):
                            kv = {"": kv}
                        for k, v in kv.items():
                            if "peak" in name:
                                maps[name][k] = max(maps[name][k], v)
                            else:
                                maps[name][k] += v
                elif t == "hist":
                    for name, kv in obj["data"].items():
                        flushes[name] += 1
                        for k, buckets in kv.items():
                            for b in buckets:
                                hists[name][k][(b.get("min"), b.get("max"))] += b["count"]
                elif t == "printf":
                    try:
                        ev = json.loads(obj["data"])
                        events[ev["ev"]].append(ev)
                    except (ValueError, KeyError):
                        undecodable += 1
                else:
                    other[t] += 1
        print("#", path)
        for ev, lst in sorted(events.items()):
            print(f"  event {ev}: {len(lst)} lines")
            for e in lst[:5]:
                print("    ", json.dumps(e))
        for name, kv in sorted(maps.items()):
            print(f"  map {name} ({flushes[name]} flushes)")
            for k, v in sorted(kv.items(), key=lambda kv: -kv[1])[:12]:
                print(f"     {k}: {v}")
        for name, kv in sorted(hists.items()):
            print(f"  hist {name} ({flushes[name]} flushes)")
            for k, buckets in kv.items():
                total = sum(buckets.values())
                shown = ", ".join(f"[{lo},{hi}]:{c}" for (lo, hi), c in sorted(buckets.items(), key=lambda x: (x[0][0] is None, x[0][0] or 0)) if c)
                print(f"     {k}: n={total} {shown}")
        if other:
            print("  other:", dict(other))
        if undecodable:
            print("  undecodable lines:", undecodable)


if __name__ == "__main__":
    main(sys.argv[1:])
