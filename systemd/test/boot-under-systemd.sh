#!/bin/bash
# boot-under-systemd.sh - start the installed unit under a real systemd, on a host whose PID 1 is not systemd.
#
# Usage (root): BACKLOG_AGENT_JAR=JAR [NOTIFY_PROBE_JAR=JAR] systemd/test/boot-under-systemd.sh OUTDIR
#
# In new pid, mount, cgroup, uts and ipc namespaces (the host's network namespace, so that BPF, listeners
# and setns are the host's own): an overlay of the host's root (writes go to a tmpfs, never to the host),
# the agent installed into it by agent/install (PREFIX=/usr, with JAR), and /lib/systemd/systemd as PID 1
# running proof.sh (beside this script), which starts the units, writes what it sees to OUTDIR and powers off.
#
# The units under test are the installed backlog-agent.service itself and two copies of it under other
# names, each with a drop-in that changes only what it runs, its Type=, Restart=no and where its output goes:
# the sandbox, capabilities and limits are the installed unit's. backlog-agent.service runs the daemon as installed (output redirected to files);
# backlog-agent-doctor.service runs doctor; notify-probe.service runs NOTIFY_PROBE_JAR through the launcher
# (Type=notify as installed) to prove readiness, reload and stop with SystemdNotify; backlog-agent-nobpf.service
# runs the daemon with bpf(2) denied as well (SystemCallFilter=~bpf), so that it starts at the ftrace rung.
#
# OUTDIR gets: proof.txt (KEY=VALUE lines), proof.log (the proof's trace), doctor.txt, trace.txt,
# trace-err.txt, notify-probe.txt, systemd.log (PID 1's own log). Exit status 0 when the proof ran to its end.
# Not exercised: MemoryMax= where the memory controller is bound to cgroup v1 (as on the build machine). BPF
# reports pids of the host's pid namespace, /proc inside shows the new one's: a listen() line may name a pid
# that the inventory's lines do not.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd -P)
self=$here/$(basename "$0")
repo=$(cd "$here/../.." && pwd -P)

if [ "${1:-}" = --inside ]; then
    # PID 1 of the new pid namespace, before it becomes systemd.
    work=$2
    mount --make-rprivate /
    mkdir -p "$work/ovl" "$work/merged"
    mount -t tmpfs -o mode=755 tmpfs "$work/ovl"
    mkdir -p "$work/ovl/upper" "$work/ovl/work"
    m=$work/merged
    mount -t overlay overlay -o "lowerdir=/,upperdir=$work/ovl/upper,workdir=$work/ovl/work" "$m"
    cp -a "$work/stage/." "$m/"
    # The host's own state, if any, stays out: systemd makes the state directory as the unit says.
    rm -rf "$m/var/lib/backlog-agent"
    mount -t proc proc "$m/proc"
    mount -t sysfs sysfs "$m/sys"
    mount -t cgroup2 cgroup2 "$m/sys/fs/cgroup"
    mount -t tracefs tracefs "$m/sys/kernel/tracing"
    mount -t bpf bpf "$m/sys/fs/bpf" 2>/dev/null || true
    # A /dev of its own (devtmpfs would be the host's). /dev/kmsg is a plain file: PID 1 logs there, not
    # into the host's kernel log.
    mount -t tmpfs -o mode=755 tmpfs "$m/dev"
    mknod -m 666 "$m/dev/null" c 1 3
    mknod -m 666 "$m/dev/zero" c 1 5
    mknod -m 666 "$m/dev/full" c 1 7
    mknod -m 666 "$m/dev/random" c 1 8
    mknod -m 666 "$m/dev/urandom" c 1 9
    mknod -m 666 "$m/dev/tty" c 5 0
    : > "$m/dev/kmsg"
    ln -s null "$m/dev/console"
    mkdir -p "$m/dev/pts" "$m/dev/shm"
    mount -t devpts devpts "$m/dev/pts" -o newinstance,ptmxmode=0666
    ln -s pts/ptmx "$m/dev/ptmx"
    mount -t tmpfs tmpfs "$m/dev/shm"
    mount -t tmpfs -o mode=755 tmpfs "$m/run"
    mount -t tmpfs -o mode=1777 tmpfs "$m/tmp"
    # The checkout, at its own path (it may be on a mount the overlay does not show), and the results.
    mkdir -p "$m$repo" "$m/out"
    mount --bind "$repo" "$m$repo"
    mount --bind "$work/out" "$m/out"
    exec chroot "$m" /usr/bin/env -i container=other PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        /lib/systemd/systemd --unit=proof.target --log-target=kmsg --log-level=info
fi

[ $# -eq 1 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
out=$(mkdir -p "$1" && cd "$1" && pwd -P)
jar=${BACKLOG_AGENT_JAR:-$repo/target/backlog-agent.jar}
[ "$(id -u)" = 0 ] || { echo "boot-under-systemd: needs root" >&2; exit 2; }
[ -x /lib/systemd/systemd ] || { echo "boot-under-systemd: no /lib/systemd/systemd" >&2; exit 2; }

work=$(mktemp -d /tmp/boot-under-systemd.XXXXXX)
cgroup=
cleanup() {
    if [ -n "$cgroup" ] && [ -d "$cgroup" ]; then
        find "$cgroup" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/stage" "$work/out"

# The agent as a package installs it, then the proof's units and drop-ins beside it.
PREFIX=/usr DESTDIR="$work/stage" BACKLOG_AGENT_JAR="$jar" "$repo/agent/install" >"$out/install.txt"
if [ -n "${NOTIFY_PROBE_JAR:-}" ]; then
    install -m 0644 "$NOTIFY_PROBE_JAR" "$work/stage/usr/lib/backlog-agent/notify-probe.jar"
fi
units=$work/stage/etc/systemd/system
unit=$work/stage/usr/lib/systemd/system/backlog-agent.service
mkdir -p "$units/backlog-agent.service.d" "$units/backlog-agent-doctor.service.d" "$units/notify-probe.service.d" \
    "$units/backlog-agent-nobpf.service.d"
cp "$unit" "$units/backlog-agent-doctor.service"
cp "$unit" "$units/backlog-agent-nobpf.service"
cp "$unit" "$units/notify-probe.service"
cat > "$units/backlog-agent.service.d/proof.conf" <<'UNIT'
[Service]
# The installed unit as it is (Type=notify, ExecStart=... run, the installed config), only with its output
# in files the proof reads, and no restart.
Restart=no
StandardOutput=file:/run/proof/run.txt
StandardError=file:/run/proof/run-err.txt
UNIT
cat > "$units/backlog-agent-nobpf.service.d/proof.conf" <<'UNIT'
[Service]
# The installed unit with bpf(2) refused, as an operator's drop-in (or a host's policy) would: bpftrace and
# libbpf-tools cannot load a program, and the ladder must climb down to ftrace inside the same sandbox.
SystemCallFilter=~bpf
Restart=no
StandardOutput=file:/run/proof/nobpf.txt
StandardError=file:/run/proof/nobpf-err.txt
UNIT
cat > "$units/backlog-agent-doctor.service.d/proof.conf" <<'UNIT'
[Service]
Type=oneshot
ExecStart=
ExecStart=/usr/bin/backlog-agent doctor
Restart=no
StandardOutput=file:/run/proof/doctor.txt
StandardError=file:/run/proof/doctor-err.txt
UNIT
cat > "$units/notify-probe.service.d/proof.conf" <<'UNIT'
[Service]
# The launcher execs java -jar on this jar: readiness comes from the main process, as the daemon's will.
Environment=BACKLOG_AGENT_JAR=/usr/lib/backlog-agent/notify-probe.jar
Restart=no
StandardOutput=file:/run/proof/notify-probe.txt
StandardError=inherit
UNIT
cat > "$units/proof.service" <<UNIT
[Unit]
Description=the sandbox proof of backlog-agent.service
[Service]
Type=oneshot
Environment=REPO=$repo
ExecStartPre=/bin/mkdir -p /run/proof
ExecStart=$repo/systemd/test/proof.sh
ExecStopPost=/bin/systemctl --no-block poweroff
UNIT
cat > "$units/proof.target" <<'UNIT'
[Unit]
Description=the sandbox proof of backlog-agent.service
Requires=proof.service
After=proof.service
UNIT

# A cgroup of its own on the host's unified hierarchy, so that systemd's slices are made under it.
for root in /sys/fs/cgroup/unified /sys/fs/cgroup; do
    if [ "$(stat -f -c %T "$root" 2>/dev/null)" = cgroup2fs ]; then
        cgroup=$root/boot-under-systemd-$$
        mkdir "$cgroup"
        break
    fi
done
status=0
(
    if [ -n "$cgroup" ]; then echo "$BASHPID" > "$cgroup/cgroup.procs"; fi
    exec timeout -s KILL "${BACKLOG_SYSTEMD_TIMEOUT:-330}" unshare --kill-child --pid --fork --mount --cgroup \
        --uts --ipc --propagation private "$self" --inside "$work"
) >"$out/boot.txt" 2>&1 || status=$?
cp -a "$work/out/." "$out/"
if grep -q '^proof.done=yes$' "$out/proof.txt" 2>/dev/null; then
    exit 0
fi
echo "boot-under-systemd: the proof did not finish (unshare status $status); see $out/boot.txt and $out/systemd.log" >&2
exit 1
