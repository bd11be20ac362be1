#!/bin/bash
# bpftrace-in-root.sh ROOT ARGS... - run the bpftrace of another Debian root (e.g. Debian 13's 0.23) on this kernel.
#
# In a private mount namespace (nothing is left mounted when it exits, and nothing
# another user of ROOT mounted is touched): /proc, /sys, /dev and /run/netns of
# the host bound into ROOT, tracefs mounted, then `chroot ROOT bpftrace ARGS`.
# An argument that is a path under ROOT (a program file written to ROOT/tmp/...)
# is passed as the path the chroot sees. Every exec keeps the pid, so a signal to
# this script's pid reaches bpftrace.
set -euo pipefail
root=${1:?usage: bpftrace-in-root.sh ROOT ARGS...}
shift
args=()
for a in "$@"; do args+=("${a#"$root"}"); done
exec unshare --mount --propagation private bash -c '
set -e
r=$1; shift
for d in proc sys dev; do mount --rbind "/$d" "$r/$d"; done
mountpoint -q "$r/sys/kernel/tracing" || mount -t tracefs nodev "$r/sys/kernel/tracing"
if [ -d /run/netns ] && [ -d "$r/run" ]; then
    mkdir -p "$r/run/netns" 2>/dev/null || true
    mount --rbind /run/netns "$r/run/netns" 2>/dev/null || true
fi
exec chroot "$r" bpftrace "$@"' bpftrace-in-root "$root" "${args[@]}"
