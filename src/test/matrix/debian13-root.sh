#!/bin/bash
# debian13-root.sh - make (once) and print the cached Debian 13 (trixie) root: bpftrace 0.23, OpenJDK 21
#
# Usage: debian13-root.sh        prints one line on stdout: the root's path
# The root serves two cells of the kernel matrix (docs/kernels.md): host-d13 (a chroot on this VM's kernel)
# and d13 (the root of a qemu guest booted with Debian 13's 6.12 kernel, over 9p).
#
# Idempotent and safe to run concurrently: a finished root carries a stamp naming the package list it was
# made with; a root without it (a run that was killed) or with another list is made again, under a lock.
# Made by `debootstrap --variant=minbase --include=PACKAGES trixie`, from the mirror this machine's apt
# already uses (read from /etc/apt/sources.list.d/debian.sources, never written here). The machine's own
# apt configuration is not touched; debootstrap itself is installed when missing.
# Environment: BACKLOG_MATRIX_CACHE (default /var/cache/backlog-agent-matrix).
set -euo pipefail

cache=${BACKLOG_MATRIX_CACHE:-/var/cache/backlog-agent-matrix}
root=$cache/debian13-root
# What the scenarios need inside: bpftrace and Java for the agent, iproute2 for ip/ss/nstat, python3 for the
# fixtures, hping3 for SYN floods, procps for sysctl/pkill, kmod for modprobe (inet_diag on the 6.12 guest),
# util-linux (essential, so always there) for setpriv and flock, libbpf-tools (0.31, its tools named
# solisten-libbpf, …) for the libbpf-tools rung in the d13 guest.
packages=bpftrace,iproute2,python3,openjdk-21-jre-headless,hping3,procps,kmod,libbpf-tools
stamp="suite=trixie packages=$packages"

log() { echo "debian13-root: $*" >&2; }
complete() { [ -f "$root/.backlog-agent-root" ] && [ "$(cat "$root/.backlog-agent-root")" = "$stamp" ]; }

if complete; then echo "$root"; exit 0; fi
[ "$(id -u)" = 0 ] || { log "must run as root to make $root"; exit 1; }
mkdir -p "$cache"
exec 9>"$cache/.debian13-root.lock"
flock 9
if complete; then echo "$root"; exit 0; fi

if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends debootstrap >&2 \
        || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends debootstrap >&2; }
fi
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || { log "no mirror in /etc/apt/sources.list.d/debian.sources"; exit 1; }

tmp=$root.tmp
# A killed earlier run may have left mounts inside its half-made root.
for m in $(awk -v p="$tmp/" 'index($2, p) == 1 {print $2}' /proc/mounts | sort -r); do umount -l "$m" || true; done
rm -rf "$tmp"
start=$(date +%s)
log "debootstrap trixie into $tmp ($packages)"
debootstrap --variant=minbase --include="$packages" trixie "$tmp" "$mirror" >&2 \
    || { log "debootstrap failed; see $tmp/debootstrap/debootstrap.log"; exit 1; }
# Shrink what nothing reads: the package cache and the downloaded lists.
rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/*_Packages
echo "$stamp" > "$tmp/.backlog-agent-root"
if [ -e "$root" ]; then rm -rf "$root"; fi
mv "$tmp" "$root"
log "made $root in $(( $(date +%s) - start )) s, $(du -sh "$root" | cut -f1)"
echo "$root"
