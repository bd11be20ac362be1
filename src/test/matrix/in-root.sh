#!/bin/bash
# in-root.sh - run one command as root in the Debian 13 root (bpftrace 0.23, OpenJDK 21) on this host's kernel
#
# Usage: in-root.sh [-s DIR]... [--] CMD [ARG]...
#   -s DIR   show this host directory inside the root at the same path, read-only (the checkout, the
#            classpath's directories and jars); repeatable
# The root is src/test/matrix/debian13-root.sh's (made on first use). CMD runs chrooted there, in a mount
# namespace of its own (unshare -m, private), so that nothing it mounts reaches the host and everything is
# gone when it ends: /proc, the host's /sys (with tracefs and BTF) and /dev, a tmpfs on /tmp and on /run (its
# own /run/netns: the namespaces CMD makes are its own). Network namespaces, BPF and the kernel are the host's.
# Exit status: CMD's.
set -euo pipefail

shares=()
while [ $# -gt 0 ]; do
    case $1 in
        -s) [ -d "${2:-}" ] || { echo "in-root: no directory ${2:-}" >&2; exit 2; }
            shares+=("$(cd "$2" && pwd -P)"); shift 2 ;;
        --) shift; break ;;
        -*) echo "in-root: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
root=$(bash "$(dirname "$0")/debian13-root.sh")
[ -e /sys/kernel/tracing/events ] || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true

exec unshare -m --propagation private -- bash -s "$root" "$(printf '%s\n' "${shares[@]+"${shares[@]}"}")" "$PWD" "$@" <<'INNER'
set -euo pipefail
root=$1; shares=$2; cwd=$3; shift 3
# The root as a mount point of its own: `ip netns exec` remounts / (mount --make-rslave /), which fails on a
# plain directory.
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
mount -t tmpfs -o mode=755 tmpfs "$root/run"
while IFS= read -r dir; do
    [ -n "$dir" ] || continue
    mkdir -p "$root$dir"
    mount --bind "$dir" "$root$dir"
    mount -o remount,bind,ro "$root$dir"
done <<<"$shares"
# CMD runs in the caller's directory where the root shows it, else in /.
exec chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp \
    LANG=C.UTF-8 TERM=dumb /bin/bash -c 'cd "$0" 2>/dev/null || cd /; exec "$@"' "$cwd" "$@"
INNER
