#!/bin/bash
# guest-kprobe-proof.sh - prove on a kprobe/fentry kernel that bpf/kprobe/*.bt attach and count right
#
# Run it inside the Debian 6.1 guest, as root:
#   src/test/qemu/run-in-guest.sh -t 300 [-w DIR] src/test/qemu/guest-kprobe-proof.sh [--record DIR]
# --record DIR  also write each bpftrace run's raw `-f json` output to DIR/PROGRAM.SCENARIO.json
#
# Prints one JSON object per line and check, "check" first and "ok" second; the last line is
# {"check":"summary","ok":...}. Exit status 0 when every check passed, 1 otherwise.
# Checks, each for the kprobe and the kfunc variant of a program (both run at the same time, as
# two bpftrace processes, so they see the same traffic):
#   kernel           bpftrace --info says kprobe and kfunc
#   compile          compile-check.sh --strict passes (type-check against this kernel's BTF)
#   synq_limit       whether this kernel admits a SYN that finds the SYN queue exactly at its
#                    limit (listen(0), syncookies off, in a new namespace: does connect succeed?);
#                    synrefused runs with KSR_SYNQ_ADMITS_AT_LIMIT set to match (--include)
#   attach           bpftrace prints attached_probes with the expected number of probes
#   accept_overflow  listen(4), never accept, 40 non-blocking connects: on 127.0.0.1 in the root
#                    namespace and, at the same time and on the same port, on 0.0.0.0 in a new
#                    namespace with only lo. @syn_refused per listener and kind equals the namespace's
#                    nstat deltas: accept = ListenOverflows, syn = TCPReqQFullDrop,
#                    cookie = TCPReqQFullDoCookies; overflow_start names the listener
#   syn_queue        two new namespaces joined by a veth pair, 200 ms netem delay on the server's
#                    side, so SYNs queue up before their ACKs come: SYN queue full with syncookies
#                    (cookie, then third ACKs dropped: accept with packet "ack") and without (syn),
#                    on IPv4, IPv6, and an IPv6 dual-stack listener reached over IPv4 (v4-mapped:
#                    counted once). Same equalities with nstat
#   accept_wait      a server that sleeps 300 ms before each of 5 accepts: the histogram and the
#                    slow_accept events agree with the waits the server measures itself
# Traffic stays on loopback and in namespaces this script creates and deletes (kp-lo, kp-srv,
# kp-cli, kp-probe); sysctls are changed only inside them.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo '{"check":"summary","ok":false,"error":"must run as root"}'; exit 1; }
exec python3 - "$0" "$@" <<'PY'
import json, math, os, signal, subprocess, sys, threading, time

SCRIPT = os.path.abspath(sys.argv[1])
REPO = os.path.abspath(os.path.join(os.path.dirname(SCRIPT), '..', '..', '..'))
RECORD = None
if len(sys.argv) > 3 and sys.argv[2] == '--record':
    RECORD = sys.argv[3]
    os.makedirs(RECORD, exist_ok=True)
T0 = time.monotonic()
ALL_OK = True
NAMESPACES = ['kp-lo', 'kp-srv', 'kp-cli', 'kp-probe']
SYNREFUSED_OPTIONS = []  # set by synq_limit()
COUNTERS = {'accept': 'TcpExtListenOverflows', 'syn': 'TcpExtTCPReqQFullDrop',
            'cookie': 'TcpExtTCPReqQFullDoCookies'}


def emit(check, ok, **fields):
    global ALL_OK
    ALL_OK = ALL_OK and ok
    print(json.dumps(dict(check=check, ok=ok, **fields)), flush=True)


def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True).stdout


def netns_inode(ns):
    return os.stat('/proc/self/ns/net' if ns is None else '/run/netns/' + ns).st_ino


def nstat(ns):
    """Absolute TcpExt counters of a namespace, from nstat -asz (absolute, no history update)."""
    cmd = ['nstat', '-asz'] + list(COUNTERS.values()) + ['TcpExtListenDrops']
    if ns is not None:
        cmd = ['ip', 'netns', 'exec', ns] + cmd
    values = {}
    for line in sh(*cmd).splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith('TcpExt'):
            values[parts[0]] = int(parts[1])
    return values


def delta(before, after):
    return {k[len('TcpExt'):]: after.get(k, 0) - before.get(k, 0) for k in after}


class Tracer:
    """One bpftrace -f json process; keeps every JSON line it prints."""

    def __init__(self, program, scenario, args=(), options=()):
        self.program, self.scenario = program, scenario
        self.lines = []
        self.attached = None
        self.attach_seconds = None
        self.stderr = []
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            ['bpftrace', '-f', 'json'] + list(options) + [os.path.join(REPO, 'bpf', 'kprobe', program)] + list(args),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.readers = [threading.Thread(target=self._read_stdout, daemon=True),
                        threading.Thread(target=self._read_stderr, daemon=True)]
        for r in self.readers:
            r.start()

    def _read_stdout(self):
        for line in self.proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            self.lines.append(line)
            if obj.get('type') == 'attached_probes' and self.attached is None:
                self.attached = obj['data']['probes']
                self.attach_seconds = round(time.monotonic() - self.started, 2)

    def _read_stderr(self):
        for line in self.proc.stderr:
            if 'RLIMIT_MEMLOCK' not in line:
                self.stderr.append(line.rstrip())

    def wait_attached(self, timeout=150):
        deadline = time.monotonic() + timeout
        while self.attached is None and self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.attached is not None

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for r in self.readers:
            r.join(timeout=10)
        if RECORD:
            name = '%s.%s.json' % (self.program, self.scenario)
            with open(os.path.join(RECORD, name), 'w') as f:
                f.write('\n'.join(self.lines) + '\n')

    def objects(self, kind):
        for line in self.lines:
            obj = json.loads(line)
            if obj.get('type') == kind:
                yield obj['data']

    def counts(self, name):
        """Sum of a count map over all its printed lines: {key: total}."""
        total = {}
        for data in self.objects('map'):
            for key, value in data.get(name, {}).items():
                total[key] = total.get(key, 0) + value
        return total

    def hist(self, name):
        """Sum of a hist map over all its printed lines: {key: {min: count}} without empty buckets."""
        total = {}
        for data in self.objects('hist'):
            for key, buckets in data.get(name, {}).items():
                per_key = total.setdefault(key, {})
                for b in buckets:
                    if b['count']:
                        per_key[b['min']] = per_key.get(b['min'], 0) + b['count']
        return total

    def events(self, ev):
        out = []
        for data in self.objects('printf'):
            try:
                obj = json.loads(data)
            except ValueError:
                continue
            if obj.get('ev') == ev:
                out.append(obj)
        return out


def start_pair(base, scenario, args=(), options=()):
    """The kprobe and the kfunc variant of a program, attached at the same time."""
    return [Tracer(base + '.bt', scenario, args, options), Tracer(base + '-kfunc.bt', scenario, args, options)]


def attach_all(tracers, expected):
    ok = True
    for t in tracers:
        attached = t.wait_attached()
        good = attached and t.attached == expected[t.program]
        emit('attach', bool(good), program=t.program, probes=t.attached, expected=expected[t.program],
             seconds=t.attach_seconds, stderr=t.stderr[-5:] if not good else [])
        ok = ok and bool(good)
    return ok


# A process that listens (never accepting) and/or connects, printing "ready" once listening.
OVERFLOW_PY = r'''
import socket, sys, time
role, addr, port, backlog, n, hold = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
fam = socket.AF_INET6 if ':' in addr else socket.AF_INET
if role == 'listen':
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind((addr, port))
    s.listen(backlog)
    print('ready', flush=True)
    sys.stdin.readline()          # until told to close
    s.close()
else:
    cs = []
    for i in range(n):
        c = socket.socket(fam, socket.SOCK_STREAM)
        c.setblocking(False)
        c.connect_ex((addr, port))
        cs.append(c)
    time.sleep(hold)
    for c in cs:
        c.close()
'''


class Listener:
    def __init__(self, ns, addr, port, backlog=4):
        cmd = ['python3', '-c', OVERFLOW_PY, 'listen', addr, str(port), str(backlog), '0', '0']
        if ns:
            cmd = ['ip', 'netns', 'exec', ns] + cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == 'ready'

    def close(self):
        self.proc.stdin.write('\n')
        self.proc.stdin.flush()
        self.proc.wait(timeout=30)


def connect(ns, addr, port, n, hold):
    cmd = ['python3', '-c', OVERFLOW_PY, 'connect', addr, str(port), '0', str(n), str(hold)]
    if ns:
        cmd = ['ip', 'netns', 'exec', ns] + cmd
    return subprocess.Popen(cmd)


def judge_listener(check, tracers, ns, key, nstat_delta, extra):
    """Per tracer: its counts for this listener equal the namespace's counter deltas."""
    for t in tracers:
        refused = {kind: 0 for kind in COUNTERS}
        others = {}
        for k, v in t.counts('@syn_refused').items():
            listener, kind = k.rsplit(',', 1)
            if listener == key:
                refused[kind] = refused.get(kind, 0) + v
            elif listener.split(',')[0] == key.split(',')[0] and listener.split(',')[-1] == key.split(',')[-1]:
                others[k] = v  # same namespace and port, other family or address: misattributed
        expected = {kind: nstat_delta[COUNTERS[kind][len('TcpExt'):]] for kind in COUNTERS}
        starts = [e for e in t.events('overflow_start')
                  if '%d,%d,%s,%d' % (e['netns'], e['family'], e['addr'], e['port']) == key]
        ok = (refused == expected and not others and sum(refused.values()) > 0
              and 1 <= len(starts) <= extra['seconds'] + 1)
        emit(check, ok, program=t.program, listener=key, refused=refused, nstat_delta=nstat_delta,
             misattributed=others, overflow_start=starts, **extra)


SYNQ_PROBE_PY = r'''
import socket, sys
s = socket.socket(); s.bind(('127.0.0.1', 7999)); s.listen(0)
c = socket.socket(); c.settimeout(float(sys.argv[1]))
try:
    c.connect(('127.0.0.1', 7999)); print('admitted')
except OSError:
    print('refused')
'''


def synq_limit():
    """Does this kernel queue a SYN that finds qlen == sk_max_ack_backlog (here 0 == 0)?"""
    sh('ip', 'netns', 'add', 'kp-probe')
    sh('ip', '-n', 'kp-probe', 'link', 'set', 'lo', 'up')
    sh('ip', 'netns', 'exec', 'kp-probe', 'sysctl', '-qw', 'net.ipv4.tcp_syncookies=0')
    outcome = sh('ip', 'netns', 'exec', 'kp-probe', 'python3', '-c', SYNQ_PROBE_PY, '2.5').strip()
    sh('ip', 'netns', 'del', 'kp-probe')
    admits = 1 if outcome == 'admitted' else 0
    header = '/tmp/ksr-synq-limit.h'
    with open(header, 'w') as f:
        f.write('#define KSR_SYNQ_ADMITS_AT_LIMIT %d\n' % admits)
    SYNREFUSED_OPTIONS[:] = ['--include', header]
    emit('synq_limit', outcome in ('admitted', 'refused'), connect_to_listen0=outcome,
         KSR_SYNQ_ADMITS_AT_LIMIT=admits)


def accept_overflow():
    tracers = start_pair('synrefused', 'accept_overflow', args=['1'], options=SYNREFUSED_OPTIONS)
    if not attach_all(tracers, {'synrefused.bt': 5, 'synrefused-kfunc.bt': 5}):
        for t in tracers:
            t.stop()
        return
    sh('ip', 'netns', 'add', 'kp-lo')
    sh('ip', '-n', 'kp-lo', 'link', 'set', 'lo', 'up')
    port, hold = 18080, 2.5
    before = {None: nstat(None), 'kp-lo': nstat('kp-lo')}
    started = time.monotonic()
    servers = [Listener(None, '127.0.0.1', port), Listener('kp-lo', '0.0.0.0', port)]
    clients = [connect(None, '127.0.0.1', port, 40, hold), connect('kp-lo', '127.0.0.1', port, 40, hold)]
    for c in clients:
        c.wait(timeout=60)
    for s in servers:
        s.close()
    seconds = math.ceil(time.monotonic() - started)
    after = {None: nstat(None), 'kp-lo': nstat('kp-lo')}
    for t in tracers:
        t.stop()
    for ns, addr in ((None, '127.0.0.1'), ('kp-lo', '0.0.0.0')):
        key = '%d,2,%s,%d' % (netns_inode(ns), addr, port)
        judge_listener('accept_overflow', tracers, ns, key, delta(before[ns], after[ns]),
                       dict(netns_name=ns or 'root', connects=40, backlog=4, seconds=seconds))
    sh('ip', 'netns', 'del', 'kp-lo')


def syn_queue():
    sh('modprobe', 'veth')
    sh('modprobe', 'sch_netem')
    for ns in ('kp-srv', 'kp-cli'):
        sh('ip', 'netns', 'add', ns)
        sh('ip', '-n', ns, 'link', 'set', 'lo', 'up')
    sh('ip', '-n', 'kp-srv', 'link', 'add', 'kps', 'type', 'veth', 'peer', 'name', 'kpc', 'netns', 'kp-cli')
    for ns, dev, v4, v6 in (('kp-srv', 'kps', '10.99.0.1/24', 'fd99::1/64'),
                            ('kp-cli', 'kpc', '10.99.0.2/24', 'fd99::2/64')):
        sh('ip', '-n', ns, 'addr', 'add', v4, 'dev', dev)
        sh('ip', '-n', ns, '-6', 'addr', 'add', v6, 'dev', dev, 'nodad')
        sh('ip', '-n', ns, 'link', 'set', dev, 'up')
    # SYN-ACKs leave the server 200 ms late: all SYNs arrive before any third ACK.
    sh('ip', 'netns', 'exec', 'kp-srv', 'tc', 'qdisc', 'add', 'dev', 'kps', 'root', 'netem', 'delay', '200ms')
    tracers = start_pair('synrefused', 'syn_queue', args=['1'], options=SYNREFUSED_OPTIONS)
    if not attach_all(tracers, {'synrefused.bt': 5, 'synrefused-kfunc.bt': 5}):
        for t in tracers:
            t.stop()
        return
    phases = [  # name, syncookies, listen on, connect to, family in the key
        ('ipv4-cookies', 1, '10.99.0.1', '10.99.0.1', 2, 7001),
        ('dualstack-v4mapped-cookies', 1, '::', '10.99.0.1', 10, 7002),
        ('ipv6-cookies', 1, 'fd99::1', 'fd99::1', 10, 7003),
        ('ipv4-no-cookies', 0, '10.99.0.1', '10.99.0.1', 2, 7004),
    ]
    results = []
    for name, cookies, listen_addr, target, family, port in phases:
        sh('ip', 'netns', 'exec', 'kp-srv', 'sysctl', '-qw', 'net.ipv4.tcp_syncookies=%d' % cookies)
        before = nstat('kp-srv')
        started = time.monotonic()
        server = Listener('kp-srv', listen_addr, port)
        connect('kp-cli', target, port, 40, 2.5).wait(timeout=60)
        server.close()
        time.sleep(0.3)
        after = nstat('kp-srv')
        results.append((name, cookies, listen_addr, family, port, delta(before, after),
                        math.ceil(time.monotonic() - started)))
    for t in tracers:
        t.stop()
    for name, cookies, listen_addr, family, port, d, seconds in results:
        key = '%d,%d,%s,%d' % (netns_inode('kp-srv'), family, listen_addr, port)
        judge_listener('syn_queue', tracers, 'kp-srv', key, d,
                       dict(phase=name, syncookies=cookies, connects=40, backlog=4,
                            netem_delay_ms=200, seconds=seconds))
    for ns in ('kp-srv', 'kp-cli'):
        sh('ip', 'netns', 'del', ns)


SLOW_SERVER_PY = r'''
import json, socket, sys, time
port, n, pause = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', port)); s.listen(16)
clients, connected = [], []
for i in range(n):
    c = socket.socket(); c.connect(('127.0.0.1', port))   # on loopback: established on return
    connected.append(time.monotonic()); clients.append(c)
waits = []
for i in range(n):
    time.sleep(pause)
    a, _ = s.accept()
    waits.append(round((time.monotonic() - connected[i]) * 1000, 1))
    a.close()
for c in clients: c.close()
s.close()
print(json.dumps(waits))
'''


def accept_wait():
    port, n, pause = 18090, 5, 0.3
    tracers = [Tracer('acceptwait.bt', 'accept_wait', ['1']), Tracer('acceptwait-kfunc.bt', 'accept_wait', ['1', '500'])]
    thresholds = {'acceptwait.bt': 100000, 'acceptwait-kfunc.bt': 500000}
    if not attach_all(tracers, {'acceptwait.bt': 5, 'acceptwait-kfunc.bt': 4}):
        for t in tracers:
            t.stop()
        return
    started = time.monotonic()
    waits_ms = json.loads(sh('python3', '-c', SLOW_SERVER_PY, str(port), str(n), str(pause)))
    seconds = math.ceil(time.monotonic() - started)
    time.sleep(1.2)
    for t in tracers:
        t.stop()
    key = '%d,2,127.0.0.1,%d' % (netns_inode(None), port)
    for t in tracers:
        hist = {int(k): v for k, v in t.hist('@kaccept_wait_us').get(key, {}).items()}
        # The log2 bucket each wait the server measured falls in; near a bucket edge either side.
        expected_ok = sum(hist.values()) == n
        for w in waits_ms:
            us = w * 1000
            lo = 1 << int(math.log2(us * 0.97))
            hi = 1 << int(math.log2(us * 1.03))
            if not (hist.get(lo, 0) or hist.get(hi, 0)):
                expected_ok = False
        events = [e for e in t.events('slow_accept')
                  if '%d,%d,%s,%d' % (e['netns'], e['family'], e['addr'], e['port']) == key]
        threshold = thresholds[t.program]
        events_ok = (1 <= len(events) <= seconds + 1
                     and all(e['threshold_us'] == threshold and e['wait_us'] > threshold for e in events)
                     and all(min(abs(e['wait_us'] / 1000 - w) for w in waits_ms) <= max(30, 0.05 * e['wait_us'] / 1000)
                             for e in events))
        emit('accept_wait', expected_ok and events_ok, program=t.program, listener=key,
             server_waits_ms=waits_ms, hist_us={str(k): v for k, v in sorted(hist.items())},
             slow_accept=events, threshold_us=threshold, seconds=seconds)


def main():
    info = subprocess.run(['bpftrace', '--info'], capture_output=True, text=True)
    text = info.stdout + info.stderr
    kprobe = 'kprobe: yes' in text
    kfunc = 'kfunc: yes' in text
    emit('kernel', kprobe and kfunc, release=os.uname().release, kprobe=kprobe, kfunc=kfunc,
         bpftrace=sh('bpftrace', '--version').strip())
    if not (kprobe and kfunc):
        return
    out = subprocess.run([os.path.join(REPO, 'src/test/qemu/compile-check.sh'), '--strict'],
                         capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.split(' ', 1)[0] in ('PASS', 'FAIL', 'SKIP'):
            verdict, path, btf = line.split(' ', 2)
            emit('compile', verdict == 'PASS', program=os.path.basename(path), btf=btf)
        elif line.startswith('  '):
            emit('compile', False, detail=line.strip())
    for step in (synq_limit, accept_overflow, syn_queue, accept_wait):
        try:
            step()
        except Exception as e:  # a broken step fails, the others still run
            emit(step.__name__, False, error=repr(e))


try:
    main()
except Exception as e:
    emit('error', False, error=repr(e))
finally:
    for ns in NAMESPACES:
        subprocess.run(['ip', 'netns', 'del', ns], capture_output=True)
    emit('summary', ALL_OK, seconds=round(time.monotonic() - T0, 1),
         record=RECORD, kernel=os.uname().release)
sys.exit(0 if ALL_OK else 1)
PY
