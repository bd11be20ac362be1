#!/bin/bash
# run-in-guest.sh - run one command as root under a Debian kernel in qemu (TCG), return its output and status
#
# Usage: run-in-guest.sh [-k 5.10|6.1|6.12] [-r host|d13|DIR] [-t SECONDS] [-e NAME=VALUE]... [-s DIR]...
#                        [-w DIR]... [-v] [--] CMD [ARG]...
#   -k KERNEL    Debian 11's 5.10, Debian 12's 6.1 (the default) or Debian 13's 6.12, as src/test/matrix/kernel.sh
#                makes them (once, cached); 5.10 and 6.12 also get their own module tree at /lib/modules
#   -r ROOT      the guest's root filesystem, shared read-only over 9p: host (this machine's /, the default),
#                d13 (the Debian 13 root of src/test/matrix/debian13-root.sh) or a directory
#   -t SECONDS   overall limit, boot to poweroff (default $BACKLOG_QEMU_TIMEOUT or 240); qemu is killed after it
#   -e NAME=VAL  export NAME=VAL to CMD (repeatable)
#   -s DIR       show this host directory in the guest read-only at the same path (its own 9p share), also where
#                the guest's root would not show it: under /tmp, or with another root (repeatable). The checkout,
#                the classpath's directories and jars a command needs go here.
#   -w DIR       the same, writable (files written there land on the host, owned by root); repeatable
#   -v           copy the guest's console (kernel and init messages) to stderr when done
# Environment: BACKLOG_QEMU_KVER (6.1's version, default: the one linux-image-amd64 installs),
#   BACKLOG_QEMU_CACHE (the cache directory), BACKLOG_QEMU_TIMEOUT, BACKLOG_QEMU_KERNEL and
#   BACKLOG_QEMU_INITRD (6.1's files; default: the cache's vmlinux and small initrd, else /boot's files),
#   BACKLOG_QEMU_LOCK_WAIT (seconds to wait for the lock below, default 3600).
#
# One guest at a time on this machine: TCG takes both CPUs. The script takes
# flock /var/lock/backlog-agent-qemu.lock itself (unless its caller already holds it, e.g.
# `flock /var/lock/backlog-agent-qemu.lock run-in-guest.sh ...`) and says how long it waited.
#
# In the guest /tmp, /run, /dev/shm are tmpfs (HOME=/tmp), so the host's /tmp is visible only through -s/-w.
# CMD runs in the host's current directory (or / where the guest cannot see it), as a child of PID 1, with
# stdin from /dev/null; stdout and stderr go together to the guest's second serial port, which this script
# prints between markers on stdout:
#   ==== run-in-guest: begin ====
#   ...CMD's output...
#   ==== run-in-guest: end status=N guest_seconds=S ====
# Exit status: CMD's, or 124 when the time limit killed qemu, or 125 when the guest failed to run CMD
# (no end marker; the console is copied to stderr). One summary line on stderr:
#   run-in-guest: kernel 6.1.0-56-amd64, root host, init after 8.2 s, command 3.1 s, total 12.0 s, status 0
# Prerequisite: none beyond root; the kernel is made on first use. No network card; the guest has lo only.
set -euo pipefail
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
timeout_s=${BACKLOG_QEMU_TIMEOUT:-240}
verbose=0
kernel_choice=6.1
root_choice=host
envs=()
shares=()    # "ro:DIR" or "rw:DIR"
while [ $# -gt 0 ]; do
    case $1 in
        -k) kernel_choice=$2; shift 2 ;;
        -r) root_choice=$2; shift 2 ;;
        -t) timeout_s=$2; shift 2 ;;
        -e) envs+=("$2"); shift 2 ;;
        -s|-w) [ -d "${2:-}" ] || { echo "run-in-guest: no directory ${2:-}" >&2; exit 2; }
            mode=ro; [ "$1" = -w ] && mode=rw
            shares+=("$mode:$(cd "$2" && pwd -P)"); shift 2 ;;
        -v) verbose=1; shift ;;
        --) shift; break ;;
        -*) echo "run-in-guest: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

# One guest at a time: take the machine's qemu lock unless an ancestor (flock FILE CMD) passed it down.
lock=/var/lock/backlog-agent-qemu.lock
held=0
for fd in /proc/$$/fd/*; do
    [ "$(readlink -f "$fd" 2>/dev/null)" = "$(readlink -f "$lock")" ] && held=1
done
if [ "$held" = 0 ]; then
    exec 8>"$lock"
    waited_from=$(date +%s)
    flock -w "${BACKLOG_QEMU_LOCK_WAIT:-3600}" 8 || { echo "run-in-guest: $lock still held after ${BACKLOG_QEMU_LOCK_WAIT:-3600} s" >&2; exit 125; }
    waited=$(( $(date +%s) - waited_from ))
    [ "$waited" -gt 0 ] && echo "run-in-guest: waited $waited s for $lock" >&2
fi

cache=${BACKLOG_QEMU_CACHE:-/var/cache/backlog-agent-qemu}
modules=
case $kernel_choice in
    6.1)
        kver=${BACKLOG_QEMU_KVER:-}
        if [ -z "$kver" ]; then
            image_pkg=$(dpkg-query -W -f='${Depends}' linux-image-amd64 2>/dev/null | tr ',' '\n' \
                | sed -n 's/^ *\(linux-image-[^ ]*\).*/\1/p' | head -n1)
            kver=${image_pkg#linux-image-}
        fi
        kernel=${BACKLOG_QEMU_KERNEL:-$cache/vmlinux-$kver}  # ELF with a PVH entry: no decompression
        [ -s "$kernel" ] || kernel=/boot/vmlinuz-$kver
        initrd=${BACKLOG_QEMU_INITRD:-$cache/initrd-9p.img-$kver}  # MODULES=list: smaller, boots faster
        [ -s "$initrd" ] || initrd=/boot/initrd.img-$kver
        ;;
    5.10|6.12)
        env_text=$(bash "$here/../matrix/kernel.sh" "$kernel_choice") || { echo "run-in-guest: kernel.sh $kernel_choice failed" >&2; exit 125; }
        kver=$(sed -n 's/^KVER=//p' <<<"$env_text")
        kernel=$(sed -n 's/^KERNEL=//p' <<<"$env_text")
        initrd=$(sed -n 's/^INITRD=//p' <<<"$env_text")
        modules=$(sed -n 's/^MODULES=//p' <<<"$env_text")/lib/modules/$kver
        ;;
    *) echo "run-in-guest: -k takes 5.10, 6.1 or 6.12, not $kernel_choice" >&2; exit 2 ;;
esac
for f in "$kernel" "$initrd"; do
    [ -n "$kver" ] && [ -f "$f" ] || { echo "run-in-guest: ${f:-kernel} missing: run src/test/qemu/setup.sh first" >&2; exit 125; }
done
command -v qemu-system-x86_64 >/dev/null || { echo "run-in-guest: qemu-system-x86_64 missing: run setup.sh first" >&2; exit 125; }

case $root_choice in
    host) root=/ ;;
    d13) root=$(bash "$here/../matrix/debian13-root.sh") || { echo "run-in-guest: debian13-root.sh failed" >&2; exit 125; } ;;
    *) [ -d "$root_choice" ] || { echo "run-in-guest: -r: no directory $root_choice" >&2; exit 2; }
       root=$(cd "$root_choice" && pwd -P) ;;
esac
# The guest sees $root at /: what it must reach on the host goes inside it. A read-only 9p root cannot grow
# mount points, so they are made here, on the host, as empty directories (harmless in the cached root).
# Not under /tmp: the guest mounts a tmpfs there.
mkdir -p "${root%/}/var/tmp"
work=$(mktemp -d "${root%/}/var/tmp/run-in-guest.XXXXXX")
guest_work=/${work#"${root%/}"/}
guest_work=/${guest_work#/}
if [ "$root" != / ]; then
    for s in "${shares[@]+"${shares[@]}"}"; do mkdir -p "${root%/}${s#*:}"; done
    [ -n "$modules" ] && mkdir -p "${root%/}/lib/modules" 2>/dev/null || true
fi
qemu_pid=
cleanup() {
    if [ -n "$qemu_pid" ]; then kill -KILL "$qemu_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
# Kill qemu in the handler itself, not only at exit: a test runner's SIGTERM must not leave it running.
trap 'cleanup; trap - EXIT; exit 143' TERM INT HUP

{
    echo '#!/bin/bash'
    echo '# PID 1 in the guest, written by run-in-guest.sh'
    echo 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp LANG=C.UTF-8 TERM=dumb'
    cat <<'INIT'
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sysfs /sys
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm 2>/dev/null
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
mountpoint -q /dev/pts || mount -t devpts devpts /dev/pts
mountpoint -q /dev/shm || mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /run
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing
mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
ulimit -l unlimited
ip link set lo up
echo "run-in-guest: init at uptime $(cut -d' ' -f1 /proc/uptime) s" >/dev/console
out=/dev/ttyS1
stty -F $out raw -echo 2>/dev/null
INIT
    if [ -n "$modules" ]; then
        # This kernel's own modules (inet_diag, tcp_diag, ... loaded on first use), over whatever the root has.
        printf 'mount -t tmpfs -o mode=755 tmpfs /lib/modules && mkdir -p /lib/modules/%q && mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000 modules /lib/modules/%q\n' "$kver" "$kver"
    fi
    i=0
    for s in "${shares[@]+"${shares[@]}"}"; do
        # mkdir: a path under the guest's /tmp exists only once created there
        printf 'mkdir -p %q 2>/dev/null; mount -t 9p -o %s,trans=virtio,version=9p2000.L,msize=512000 w%d %q\n' "${s#*:}" "${s%%:*}" $i "${s#*:}"
        i=$((i + 1))
    done
    for e in "${envs[@]+"${envs[@]}"}"; do printf 'export %q\n' "$e"; done
    printf 'cd %q 2>/dev/null || cd /\n' "$PWD"
    echo 't0=$(cut -d" " -f1 /proc/uptime)'
    echo 'echo "==== run-in-guest: begin ====" >$out'
    printf '%q ' "$@"; echo ' </dev/null >$out 2>&1'
    echo 'status=$?'
    echo 't1=$(cut -d" " -f1 /proc/uptime)'
    echo 'echo "==== run-in-guest: end status=$status guest_seconds=$(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }") ====" >$out'
    # Debian 13's minbase root has no poweroff: the kernel's own SysRq power-off does the same.
    echo 'sync; poweroff -f 2>/dev/null; echo o > /proc/sysrq-trigger; sleep 10'
} > "$work/init"
chmod 755 "$work/init"

# The command's output file is read while qemu writes it, to time the boot.
: > "$work/out"; : > "$work/console"
share_args=()
i=0
for s in "${shares[@]+"${shares[@]}"}"; do
    ro=; [ "${s%%:*}" = ro ] && ro=,readonly=on
    share_args+=(-fsdev "local,id=w$i,path=${s#*:},security_model=none,multidevs=remap$ro" -device "virtio-9p-pci,fsdev=w$i,mount_tag=w$i")
    i=$((i + 1))
done
if [ -n "$modules" ]; then
    share_args+=(-fsdev "local,id=modules,path=$modules,security_model=none,readonly=on" -device "virtio-9p-pci,fsdev=modules,mount_tag=modules")
fi
start=$(date +%s.%N)
setpriv --pdeathsig KILL -- qemu-system-x86_64 \
    -accel tcg,thread=multi -cpu max -machine pc -nodefaults -no-user-config \
    -m 2048 -smp 2 -display none -no-reboot \
    -serial "file:$work/console" -serial "file:$work/out" \
    -kernel "$kernel" -initrd "$initrd" \
    -fsdev "local,id=root,path=$root,security_model=none,readonly=on,multidevs=remap" \
    -device virtio-9p-pci,fsdev=root,mount_tag=hostroot "${share_args[@]+"${share_args[@]}"}" \
    -append "console=ttyS0 root=hostroot rootfstype=9p rootflags=trans=virtio,version=9p2000.L,msize=512000,cache=loose ro init=$guest_work/init panic=-1 quiet" \
    </dev/null >"$work/qemu.log" 2>&1 &
qemu_pid=$!
calc() { awk "BEGIN { printf \"%.1f\", $1 }"; }
deadline=$(calc "$start + $timeout_s")
init_at=
timed_out=0
while kill -0 "$qemu_pid" 2>/dev/null; do
    now=$(date +%s.%N)
    if [ -z "$init_at" ] && grep -q '^==== run-in-guest: begin ====' "$work/out"; then init_at=$now; fi
    if [ "$(awk "BEGIN { print ($now > $deadline) }")" = 1 ]; then
        kill -KILL "$qemu_pid" 2>/dev/null || true
        timed_out=1
        break
    fi
    sleep 0.2
done
wait "$qemu_pid" 2>/dev/null && qemu_status=0 || qemu_status=$?
qemu_pid=
end=$(date +%s.%N)

tr -d '\r' < "$work/out" > "$work/out.clean"
sed -n '/^==== run-in-guest: begin ====$/,/^==== run-in-guest: end status=/p' "$work/out.clean"; echo
end_line=$(grep -a '^==== run-in-guest: end status=' "$work/out.clean" | tail -n1 || true)
if [ -n "$end_line" ]; then
    status=$(sed -n 's/.*end status=\([0-9]*\).*/\1/p' <<<"$end_line")
    cmd_s=$(sed -n 's/.*guest_seconds=\([0-9.]*\).*/\1/p' <<<"$end_line")
elif [ "$timed_out" = 1 ]; then
    status=124
else
    status=125
fi
if [ "$verbose" = 1 ] || [ -z "$end_line" ]; then
    echo "---- run-in-guest: console (qemu status $qemu_status) ----" >&2
    tr -d '\r' < "$work/console" | tail -n 200 >&2
    tail -n 20 "$work/qemu.log" >&2
fi
init_s=$( [ -n "$init_at" ] && calc "$init_at - $start" || echo '?')
total_s=$(calc "$end - $start")
echo "run-in-guest: kernel $kver, root $root_choice, init after $init_s s, command ${cmd_s:-?} s, total $total_s s, status $status$([ "$timed_out" = 1 ] && echo ', timed out')" >&2
exit "$status"
