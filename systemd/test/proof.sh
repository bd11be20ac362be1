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

# trace, inside the sandbox, while processes of another user overflow listeners in another namespace.
ns=bltest-sdproof-$$
ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
asNobody() { ip netns exec "$ns" setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
(sleep 600 | asNobody python3 "$REPO/src/test/resources/fixtures/listener.py" --port 9090 --backlog 4 \
    --connect 20 >/run/proof/listener-9090.txt 2>&1 &)
timeout 30 systemctl start backlog-agent.service; say trace.start.rc $?
# Compiling and attaching takes about a second here, minutes in an emulated guest.
for _ in $(seq 1 600); do
    grep -q 'tracing at tier' /run/proof/trace-err.txt 2>/dev/null && break
    sleep 0.5
done
main=$(systemctl show -p MainPID --value backlog-agent.service)
process trace.main "$main"
child=$(pgrep -P "$main" bpftrace | head -n1)
[ -n "$child" ] && process trace.bpftrace "$child"
say trace.cgroup "$(sed -n 's/^0:://p' "/proc/$main/cgroup")"
# A listen() while tracing: the requested backlog is seen and kept in the state file.
(sleep 600 | asNobody python3 "$REPO/src/test/resources/fixtures/listener.py" --port 9191 --backlog 2 \
    --connect 10 >/run/proof/listener-9191.txt 2>&1 &)
for _ in $(seq 1 120); do
    grep -q ':9191 .*accept queue full' /run/proof/trace.txt 2>/dev/null && break
    sleep 0.5
done
sleep 1
timeout 30 systemctl stop backlog-agent.service; say trace.stop.rc $?
show trace backlog-agent.service
cp /run/proof/trace.txt /run/proof/trace-err.txt /out/
say state.directory.mode "$(stat -c %a /var/lib/backlog-agent)"
say state.file.mode "$(stat -c %a /var/lib/backlog-agent/requested-backlogs.json)"
say state.has.9191 "$(grep -c '"port":9191,"requested":2' /var/lib/backlog-agent/requested-backlogs.json)"
say bpftrace.left "$(pgrep -c bpftrace)"
ip netns del "$ns"

cp /dev/kmsg /out/systemd.log
say proof.done yes
