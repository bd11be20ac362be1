#!/bin/bash
# proof.sh - run by proof.service under boot-under-systemd.sh's systemd: starts the hardened units, records
# what systemd and the kernel say about them as KEY=VALUE lines in /out/proof.txt, then lets systemd power off.
set -u
exec 2>/out/proof.log
PS4='+ $(date +%T.%N | cut -c1-12) '
set -x
proof=/out/proof.txt
: > "$proof"
say() { echo "$1=$2" >> "$proof"; }
# show PREFIX UNIT: the unit's state as systemd sees it.
show() {
    systemctl show "$2" --no-pager -p ActiveState -p SubState -p Result -p StatusText -p ExecMainStatus -p NRestarts \
        | sed "s/^/$1./" >> "$proof"
}
# process PREFIX PID: what the kernel says the process may do.
process() {
    say "$1.comm" "$(cat "/proc/$2/comm")"
    grep -E '^(CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' "/proc/$2/status" | sed "s/^/$1./; s/:\s*/=/" >> "$proof"
}

say systemd.version "$(systemctl --version | head -n1)"

# Readiness, reload and stop, by SystemdNotify in the main process (the launcher execs java).
if [ -s /usr/lib/backlog-agent/notify-probe.jar ]; then
    timeout 60 systemctl start notify-probe.service; say notify.start.rc $?
    show notify.started notify-probe.service
    process notify.main "$(systemctl show -p MainPID --value notify-probe.service)"
    timeout 30 systemctl reload notify-probe.service; say notify.reload.rc $?
    for _ in $(seq 1 20); do
        [ "$(systemctl show -p StatusText --value notify-probe.service)" = "probe: reloaded" ] && break
        sleep 0.25
    done
    show notify.reloaded notify-probe.service
    timeout 30 systemctl stop notify-probe.service; say notify.stop.rc $?
    show notify.stopped notify-probe.service
    cp /run/proof/notify-probe.txt /out/
fi

# doctor, inside the sandbox: what the agent may observe there.
timeout 300 systemctl start backlog-agent-doctor.service; say doctor.rc $?
show doctor backlog-agent-doctor.service
cp /run/proof/doctor.txt /run/proof/doctor-err.txt /out/

# The daemon, inside the sandbox, while processes of another user overflow listeners in another namespace.
ns=bltest-sdproof-$$
ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
asNobody() { ip netns exec "$ns" setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
(sleep 600 | asNobody python3 "$REPO/src/test/resources/fixtures/listener.py" --port 9090 --backlog 4 \
    --connect 20 >/run/proof/listener-9090.txt 2>&1 &)
# The daemon as installed: Type=notify, so start returns once its programs are attached.
timeout 300 systemctl start backlog-agent.service; say run.start.rc $?
show run.started backlog-agent.service
main=$(systemctl show -p MainPID --value backlog-agent.service)
process run.main "$main"
child=$(pgrep -P "$main" bpftrace | head -n1)
[ -n "$child" ] && process run.bpftrace "$child"
say run.cgroup "$(sed -n 's/^0:://p' "/proc/$main/cgroup")"
# overflowing PORT OUTPUT: a listen(2) while a daemon runs, which 10 connects overflow; returns once the daemon's
# summary line (every interval, 10 s by default) in OUTPUT names it.
overflowing() {
    (sleep 600 | asNobody python3 "$REPO/src/test/resources/fixtures/listener.py" --port "$1" --backlog 2 \
        --connect 10 >"/run/proof/listener-$1.txt" 2>&1 &)
    for _ in $(seq 1 240); do
        grep -q "127.0.0.1:$1 [0-9]* SYNs and third ACKs (accept queue" "$2" 2>/dev/null && break
        sleep 0.5
    done
}
# requested PORT: 1 when the state file keeps listen(2) on PORT, by its socket (format 2's "sockets"), else 0.
requested() {
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(1 for e in d.get("sockets", []) if e.get("port") == int(sys.argv[2]) and e.get("requested") == 2))' \
        /var/lib/backlog-agent/requested-backlogs.json "$1" 2>/dev/null || echo 0
}
# A listen() while the daemon runs: the requested backlog is seen and kept in the state file.
overflowing 9191 /run/proof/run.txt
timeout 60 systemctl reload backlog-agent.service; say run.reload.rc $?
for _ in $(seq 1 120); do
    grep -q '^configuration reloaded' /run/proof/run.txt 2>/dev/null && break
    sleep 0.5
done
show run.reloaded backlog-agent.service
timeout 30 systemctl stop backlog-agent.service; say run.stop.rc $?
show run backlog-agent.service
cp /run/proof/run.txt /run/proof/run-err.txt /out/
say state.directory.mode "$(stat -c %a /var/lib/backlog-agent)"
say state.file.mode "$(stat -c %a /var/lib/backlog-agent/requested-backlogs.json)"
cp /var/lib/backlog-agent/requested-backlogs.json /out/ 2>/dev/null
say state.has.9191 "$(requested 9191)"
say bpftrace.left "$(pgrep -c bpftrace)"

# The ftrace rung under the installed unit: bpf(2) denied by a drop-in, so the daemon starts at the ftrace
# tier, whose tracefs instance needs the unit's ReadWritePaths=/sys/kernel/tracing under ProtectKernelTunables.
timeout 300 systemctl start backlog-agent-nobpf.service; say nobpf.start.rc $?
show nobpf.started backlog-agent-nobpf.service
main=$(systemctl show -p MainPID --value backlog-agent-nobpf.service)
process nobpf.main "$main"
# How the unit sees tracefs: the mount options (ro/rw) of the last mount at /sys/kernel/tracing and at the
# unit's bound view of it.
grep -E ' (/sys/kernel/tracing|/run/backlog-agent/tracefs) ' "/proc/$main/mountinfo" > /out/nobpf-tracefs-mounts.txt
say nobpf.tracefs "$(awk '$5 == "/sys/kernel/tracing" {print $6}' "/proc/$main/mountinfo" | tail -n1)"
say nobpf.tracefs.bound "$(awk '$5 == "/run/backlog-agent/tracefs" {print $6}' "/proc/$main/mountinfo" | tail -n1)"
# Its own instance, named after its pid (others' instances on this host are left out of the count).
say nobpf.instances "$(ls /sys/kernel/tracing/instances | grep -c "^backlog-agent-$main-")"
overflowing 9292 /run/proof/nobpf.txt
timeout 30 systemctl stop backlog-agent-nobpf.service; say nobpf.stop.rc $?
show nobpf backlog-agent-nobpf.service
say nobpf.instances.left "$(ls /sys/kernel/tracing/instances | grep -c "^backlog-agent-$main-")"
cp /run/proof/nobpf.txt /run/proof/nobpf-err.txt /out/
# Not asked: state.has.9292. The ftrace tier ties listen(2) to its socket through /proc/TID/fd at once, with
# the trace event's pid, which is the host's; this systemd's /proc shows its own pid namespace.
ip netns del "$ns"

cp /dev/kmsg /out/systemd.log
say proof.done yes
