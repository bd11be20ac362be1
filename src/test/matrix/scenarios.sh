#!/bin/bash
# scenarios.sh - one cell of the kernel matrix (docs/kernels.md): the agent, and the kernel's own numbers, on the
# same five situations, for each tier asked for. Runs where the cell runs: in a qemu guest (run-in-guest.sh), in
# the Debian 13 chroot (in-root.sh) or on this host; as root.
#
# Usage: scenarios.sh [STEP]... CLASSPATH FIXTURE_DIR      the steps run in the order given:
#   --doctor LABEL:OPTIONS   doctor --json with these options (after the colon, split on ','), e.g. --doctor plain:
#   --phase LABEL:OPTIONS    a phase: trace --json with these options, and the scenarios below, e.g. --phase auto:
#                            (the tier the agent picks) or --phase tracepoint:--tier,tracepoint (forced)
#   --hide-btf               from here on, an empty tmpfs over /sys/kernel/btf: a kernel that ships no BTF
#   CLASSPATH                the agent's classes and dependencies (as the host's test run sees them)
#   FIXTURE_DIR              src/test/resources/fixtures (listener.py)
# Default steps: --doctor plain: --phase auto: --phase tracepoint:--tier,tracepoint
#
# Each phase starts `trace --json`, waits until it traces, then runs, one after the other, each in a network
# namespace of its own (bl-guests-PHASE-NAME, only lo, removed afterwards) with the listener on port 8080:
#   listen       net.core.somaxconn=64, listen(1024), kept open: requested 1024, effective 64, truncated
#   overflow     listen(4), never accepts, 40 connects, reset after 4 s (so that the drops end there, before the
#                kernel's numbers are read: listener.py says why): accept-queue overflow
#                (overflow and synflood*: the kernel's numbers are read once the listener's drops stopped rising)
#   synflood0    tcp_syncookies=0, listen(128), 3 s of hping3 -S --rand-source: SYN-queue overflow, SYNs dropped,
#                SYN-ACKs retransmitted (the listener is closed 3 s after the flood, which ends them)
#   synflood1    tcp_syncookies=1, the same flood: SYN cookies sent
#   slowaccept   listen(16), 5 connects, one accept every 0.3 s: waits of 0.3 s and more
#   closedport   20 connects to 127.0.0.1:9 where nobody listens: resets sent
# Prints one prefixed line per fact, for the JUnit test of the cell (MatrixCell) to check:
#   ENV {"kernel":..,"bpftrace":..,"java":..,"btf":true|false}
#   DOCTOR LABEL {doctor --json}
#   PHASE LABEL {"options":[..],"status":N,"seconds":S}     trace's exit status and how long the phase took
#   TRACE_ERR LABEL <line>                                   trace's stderr (tier, programs, what cannot run)
#   TRACE LABEL {json line}                                  every line trace printed
#   SCENARIO LABEL {"name":..,"netns":inode,"port":..,"pid":..,"ss":"ss -ltnmH line","before":{..},"after":{..},..}
#                                                            nstat -asz counters in that namespace before/after
#                                                            (synflood*: "end" once the listener closed)
set -u
steps=()
while [ $# -gt 0 ]; do
    case $1 in
        --phase|--doctor) steps+=("${1#--}:$2"); shift 2 ;;
        --hide-btf) steps+=("hide-btf:-:"); shift ;;
        *) break ;;
    esac
done
[ $# -eq 2 ] || { sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
[ ${#steps[@]} -gt 0 ] || steps=("doctor:plain:" "phase:auto:" "phase:tracepoint:--tier,tracepoint")
export HOME=${HOME:-/tmp}
ip link set lo up 2>/dev/null
exec python3 - "$1" "$2" "$(printf '%s\n' "${steps[@]}")" <<'PY'
import json, os, signal, subprocess, sys, tempfile, threading, time

CP, FIXTURES = sys.argv[1], sys.argv[2]
STEPS = [s.split(':', 2) for s in sys.argv[3].splitlines() if s]
LISTENER = os.path.join(FIXTURES, 'listener.py')
PORT = 8080
COUNTERS = ['TcpExtListenOverflows', 'TcpExtListenDrops', 'TcpExtTCPReqQFullDrop', 'TcpExtTCPReqQFullDoCookies',
            'TcpExtSyncookiesSent', 'TcpOutRsts', 'TcpAttemptFails', 'TcpRetransSegs', 'TcpExtTCPSynRetrans',
            # not checked: what a listener's drops beyond ListenOverflows may be (a request reset, a full socket backlog)
            'TcpExtEmbryonicRsts', 'TcpExtTCPBacklogDrop']
WORK = tempfile.mkdtemp(prefix='scenarios-')


def out(tag, label, payload):
    text = payload if isinstance(payload, str) else json.dumps(payload)
    print(tag + ' ' + label + ' ' + text, flush=True)


def sh(*cmd, timeout=60):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout).stdout
    except subprocess.TimeoutExpired:
        return ''


def agent(*args):
    return ['java', '-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC', '-cp', CP, 'dev.backlogagent.cli.BacklogAgent'] + list(args)


def options(text):
    return [o for o in text.split(',') if o]


def first_line(*cmd):
    text = sh(*cmd)
    return text.strip().splitlines()[0] if text.strip() else None


java_version = subprocess.run(['java', '-version'], capture_output=True, text=True).stderr.strip().splitlines()
out('ENV', '-', {'kernel': os.uname().release, 'bpftrace': first_line('bpftrace', '--version'),
                 'java': java_version[0] if java_version else None,
                 'btf': os.path.exists('/sys/kernel/btf/vmlinux')})


# ---- the namespaces and what the kernel says in them ----

class Netns:
    def __init__(self, name, sysctls=()):
        self.name = name
        sh('ip', 'netns', 'del', name)
        subprocess.run(['ip', 'netns', 'add', name], check=True)
        self.exec(['ip', 'link', 'set', 'lo', 'up'])
        for key, value in sysctls:
            self.exec(['sysctl', '-qw', '%s=%s' % (key, value)])
        self.inode = os.stat('/run/netns/' + name).st_ino

    def prefix(self):
        return ['ip', 'netns', 'exec', self.name]

    def exec(self, cmd, timeout=60):
        return sh(*(self.prefix() + cmd), timeout=timeout)

    def nstat(self):
        values = {}
        for line in self.exec(['nstat', '-asz'] + COUNTERS).splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] in COUNTERS:
                values[parts[0]] = int(parts[1])
        return values

    def ss(self, port=PORT):
        return ' '.join(self.exec(['ss', '-ltnmH', 'sport = :%d' % port]).split())

    def delete(self):
        sh('ip', 'netns', 'del', self.name)

    def settled(self, port=PORT, most=20):
        """Returns once the listener's drops (ss's d) stopped rising: two reads 1.5 s apart, longer than the agent's
        1 s interval, the same. The kernel's numbers read next are then final, and the agent has read the listener
        after its last drop, while it was still open. Under emulation packets can wait in the backlog queue for
        seconds after their sender stopped (a SYN flood's last 11 drops came 3 s after hping3 ended)."""
        last = None
        for _ in range(most):
            now = self.ss(port)
            if now == last:
                return
            last = now
            time.sleep(1.5)


class Listener:
    """listener.py in a namespace; it listens until its stdin closes."""

    def __init__(self, ns, *args):
        self.proc = subprocess.Popen(ns.prefix() + ['python3', LISTENER, '--port', str(PORT)] + list(args),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        self.pid = json.loads(line)['pid'] if line.strip() else None

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# ---- the scenarios: each returns its facts and what to close at the end of the phase ----

def listen(label):
    ns = Netns('bl-guests-%s-listen' % label, [('net.core.somaxconn', 64)])
    l = Listener(ns, '--host', '0.0.0.0', '--backlog', '1024')
    time.sleep(1)
    return {'pid': l.pid, 'ns': ns, 'requested': 1024, 'somaxconn': 64, 'ss': ns.ss()}, [l]


def overflow(label):
    ns = Netns('bl-guests-%s-overflow' % label)
    before = ns.nstat()
    l = Listener(ns, '--backlog', '4', '--connect', '40', '--close-after', '4', '--reset-on-close')
    time.sleep(6)
    ns.settled()
    return {'pid': l.pid, 'ns': ns, 'backlog': 4, 'connects': 40, 'ss': ns.ss(), 'before': before,
            'after': ns.nstat()}, [l]


def synflood(label, cookies):
    ns = Netns('bl-guests-%s-syn%d' % (label, cookies), [('net.ipv4.tcp_syncookies', cookies)])
    l = Listener(ns, '--backlog', '128')
    before = ns.nstat()
    started = time.monotonic()
    ns.exec(['timeout', '3', 'hping3', '-q', '-S', '-p', str(PORT), '-i', 'u100', '--rand-source', '127.0.0.1'], timeout=30)
    flood_s = round(time.monotonic() - started, 1)
    time.sleep(3)
    ns.settled()
    facts = {'pid': l.pid, 'ns': ns, 'syncookies': cookies, 'backlog': 128, 'flood_seconds': flood_s, 'ss': ns.ss(),
             'before': before, 'after': ns.nstat()}
    # The half-open requests of the flood retransmit their SYN-ACKs for a minute: closing the listener ends them,
    # so that the namespace's TCPSynRetrans (each SYN-ACK retransmit; nothing else here retransmits a SYN) is final
    # and can be compared with what the agent counted. Its drops stopped with the flood and are all counted.
    l.close()
    time.sleep(3)
    facts['end'] = ns.nstat()
    return facts, []


def slowaccept(label):
    ns = Netns('bl-guests-%s-slow' % label)
    l = Listener(ns, '--backlog', '16', '--connect', '5', '--accept-every', '0.3')
    time.sleep(3)
    return {'pid': l.pid, 'ns': ns, 'connects': 5, 'accept_every_ms': 300, 'ss': ns.ss()}, [l]


def closedport(label):
    ns = Netns('bl-guests-%s-closed' % label)
    before = ns.nstat()
    refused = ns.exec(['python3', '-c', '''
import socket
refused = 0
for _ in range(20):
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", 9))
    except ConnectionRefusedError:
        refused += 1
    s.close()
print(refused)
''']).strip()
    time.sleep(1)
    return {'pid': None, 'ns': ns, 'port': 9, 'refused': int(refused or 0), 'before': before, 'after': ns.nstat()}, []


SCENARIOS = [('listen', listen), ('overflow', overflow), ('synflood0', lambda l: synflood(l, 0)),
             ('synflood1', lambda l: synflood(l, 1)), ('slowaccept', slowaccept), ('closedport', closedport)]


# ---- one phase: trace, the scenarios, the output ----

def drain(stream, into):
    for line in stream:
        into.append(line.rstrip('\n'))


def phase(label, opts):
    started = time.monotonic()
    stdout_lines, stderr_lines = [], []
    trace = subprocess.Popen(agent('trace', '--json', '--interval', '1', '--state', os.path.join(WORK, label + '.state'),
                                   *opts), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    readers = [threading.Thread(target=drain, args=(trace.stdout, stdout_lines), daemon=True),
               threading.Thread(target=drain, args=(trace.stderr, stderr_lines), daemon=True)]
    for r in readers:
        r.start()
    # Probing and attaching takes minutes under emulation: wait for trace's own "tracing at tier" line.
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and trace.poll() is None \
            and not any(l.startswith('tracing at tier') for l in stderr_lines):
        time.sleep(0.2)
    attached_s = round(time.monotonic() - started, 1)
    closers, netns = [], []
    if trace.poll() is None:
        time.sleep(1)
        for name, run in SCENARIOS:
            # Namespace inodes are reused once freed: the lines of a scenario are those since it began.
            since = time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime()) + '.000Z'
            facts, close = run(label)
            facts['since'] = since
            ns = facts.pop('ns')
            netns.append(ns)
            closers += close
            facts.update(name=name, netns=ns.inode, port=facts.get('port', PORT))
            out('SCENARIO', label, facts)
        time.sleep(4)  # the last interval closes, with the listeners still open
        trace.send_signal(signal.SIGINT)
    try:
        status = trace.wait(timeout=60)
    except subprocess.TimeoutExpired:
        trace.kill()
        status = trace.wait()
    for r in readers:
        r.join(timeout=10)
    for c in closers:
        c.close()
    for ns in netns:
        ns.delete()
    for line in stderr_lines:
        out('TRACE_ERR', label, line)
    for line in stdout_lines:
        if line.startswith('{'):
            out('TRACE', label, line)
    out('PHASE', label, {'options': opts, 'status': status, 'attached_seconds': attached_s,
                         'seconds': round(time.monotonic() - started, 1)})


def doctor(label, opts):
    started = time.monotonic()
    run = subprocess.run(agent('doctor', '--json', *opts), capture_output=True, text=True)
    text = ' '.join(run.stdout.split()) if run.stdout.strip().startswith('{') else json.dumps(
        {'error': (run.stdout + run.stderr).strip()[-2000:], 'status': run.returncode})
    out('DOCTOR', label, text)
    out('PHASE', 'doctor-' + label, {'status': run.returncode, 'seconds': round(time.monotonic() - started, 1)})


for kind, label, opts in STEPS:
    if kind == 'hide-btf':
        # A kernel without BTF of its own, as older cloud and enterprise kernels are.
        subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'btf-hidden', '/sys/kernel/btf'], check=True)
        out('ENV', 'hide-btf', {'btf': os.path.exists('/sys/kernel/btf/vmlinux')})
    elif kind == 'doctor':
        doctor(label, options(opts))
    else:
        phase(label, options(opts))
PY
