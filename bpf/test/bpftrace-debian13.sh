#!/bin/bash
# bpftrace-debian13.sh ARGS... - Debian 13's bpftrace (0.23) on this kernel, as a drop-in for `bpftrace`:
# the agent and the benchmarks can run it as their bpftrace (--bpftrace, `bpftrace:`, -Dbench.bpftrace=) to
# price or prove the programs under the other dialect on the same machine.
#
# The root is src/test/matrix/debian13-root.sh's (made on first use). In a private mount namespace (nothing
# stays mounted when it exits): /proc, /sys, /dev, tracefs, and this host's /tmp, /run, this checkout and
# the directories in BPFTRACE_SHARE (space-separated) at the same paths inside the root, so that program
# files, namespaces and state written by the host's processes are where they name them; the working
# directory is kept. Every exec keeps the pid, so a signal to this script's pid reaches bpftrace.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd -P)
root=$(bash "$repo/src/test/matrix/debian13-root.sh")
exec unshare --mount --propagation private bash -c '
set -e
r=$1; cwd=$2; shift 2
for d in /proc /sys /dev /tmp /run "$@"; do
    [ "$d" = -- ] && break
    mkdir -p "$r$d"; mount --rbind "$d" "$r$d"
done
while [ "$1" != -- ]; do shift; done; shift
mountpoint -q "$r/sys/kernel/tracing" || mount -t tracefs nodev "$r/sys/kernel/tracing"
exec chroot "$r" /bin/sh -c "cd \"\$0\" && exec bpftrace \"\$@\"" "$cwd" "$@"' bpftrace-debian13 "$root" "$PWD" \
    "$repo" ${BPFTRACE_SHARE:-} -- "$@"
