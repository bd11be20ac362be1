#!/bin/bash
# guest-agent-proof.sh - inside the Debian 6.1 guest (see run-in-guest.sh): the agent itself, not just its
# programs, on a kernel with kprobes and fentry. Prints prefixed lines for the Java test to check:
#   DOCTOR {doctor --json}                      the tier the agent picks here
#   TRACE_ERR <line>                            trace's stderr (the tier and programs it runs)
#   TRACE {json line}                           every line trace printed
#   LISTENER {"pid":..,"port":..}               the overflowing listener
#   SS <ss -ltnmH line>                         the listener's numbers after the run
#   NSTAT <name> <value>                        ListenOverflows/ListenDrops before (B) and after (A)
# Usage: guest-agent-proof.sh CLASSPATH FIXTURE_DIR   (the agent's classes and dependencies, as the
# host's test run sees them: the guest shares the host's root read-only)
set -u
cp=$1
fixtures=$2
java=${JAVA:-java}
agent() { "$java" -XX:TieredStopAtLevel=1 -cp "$cp" dev.backlogagent.cli.BacklogAgent "$@"; }
export HOME=/tmp
ip link set lo up 2>/dev/null

echo "DOCTOR $(agent doctor --json 2>/dev/null | tr -d '\n')"

for c in TcpExtListenOverflows TcpExtListenDrops; do echo "NSTAT B$c $(nstat -asz "$c" | awk -v c=$c '$1==c {print $2}')"; done

BACKLOG_AGENT_RAW_LOG=/tmp/raw.log agent trace --json --duration 30 --state /tmp/state.json >/tmp/trace.out 2>/tmp/trace.err &
trace=$!
for _ in $(seq 1 600); do
  grep -q "tracing at tier" /tmp/trace.err 2>/dev/null && break
  kill -0 $trace 2>/dev/null || break
  sleep 0.2
done
sleep 1
# backlog 4, 40 connects, the clients closed after 4 s so that the drops stop before trace does.
# (its stdin stays open: the fixture listens until stdin closes)
sleep 120 | python3 "$fixtures/listener.py" --port 8080 --backlog 4 --connect 40 --close-after 4 >/tmp/listener.out 2>&1 &
server=$!
for _ in $(seq 1 100); do [ -s /tmp/listener.out ] && break; sleep 0.1; done
echo "LISTENER $(head -1 /tmp/listener.out)"
wait $trace
ss -ltnmH "sport = :8080" | tr '\n' ' ' | sed 's/^/SS /'; echo
for c in TcpExtListenOverflows TcpExtListenDrops; do echo "NSTAT A$c $(nstat -asz "$c" | awk -v c=$c '$1==c {print $2}')"; done
pkill -f "listener.py --port 8080" 2>/dev/null
sed 's/^/TRACE_ERR /' /tmp/trace.err
sed 's/^/TRACE /' /tmp/trace.out
grep 'syn_refused\|overflow_start\|@handshakes' /tmp/raw.log 2>/dev/null | sed 's/^/RAW /' 
