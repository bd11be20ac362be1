#!/usr/bin/env bash
# formats-from-btf.sh BTF OUTDIR - the tracepoint format files the agent reads, derived from a kernel's BTF.
#
# For a kernel that is not running here (Debian's 5.10, 6.1, 6.12 under qemu), writes
# OUTDIR/<subsystem>/<event>/format for the events bpf/ uses, in the layout of
# /sys/kernel/tracing/events: one "field:TYPE NAME;" line per field of the event's
# struct trace_event_raw_* in BTF (what the kernel builds its format file from).
# Offsets and print fmt are left out: the agent reads field names only. The syscall
# events are not in BTF (their format is generated per syscall and the same on
# every kernel the agent supports): written as the kernel prints them.
# Needs bpftool. Used to record src/test/resources/tracepoint-formats/.
set -euo pipefail
btf=${1:?usage: formats-from-btf.sh BTF OUTDIR}
out=${2:?usage: formats-from-btf.sh BTF OUTDIR}
dump=$(bpftool btf dump file "$btf" format c)

event() { # SUBSYS EVENT STRUCT...: the first struct this kernel has
    local subsys=$1 name=$2 s body; shift 2
    for s in "$@"; do
        body=$(awk -v s="struct $s {" '$0 == s {p=1; next} p && /^};/ {exit} p' <<<"$dump")
        if [ -n "$body" ]; then
            mkdir -p "$out/$subsys/$name"
            { echo "name: $name"; echo "format:"
              grep -v -e 'struct trace_entry ent;' -e '__data\[0\]' <<<"$body" |
                  sed -E 's/^\s+//; s/;$//' | awk '{print "\tfield:" $0 ";"}'
              echo; echo "# derived from BTF struct $s by bpf/test/formats-from-btf.sh"; } >"$out/$subsys/$name/format"
            return 0
        fi
    done
    echo "formats-from-btf: no struct for $subsys:$name ($*)" >&2
}

event skb kfree_skb trace_event_raw_kfree_skb
event sock inet_sock_set_state trace_event_raw_inet_sock_set_state
event tcp tcp_retransmit_synack trace_event_raw_tcp_retransmit_synack
event tcp tcp_send_reset trace_event_raw_tcp_send_reset trace_event_raw_tcp_event_sk_skb
syscall() { # NAME FIELD...
    local name=$1 f; shift
    mkdir -p "$out/syscalls/$name"
    { echo "name: $name"; echo "format:"; echo "	field:int __syscall_nr;"
      for f in "$@"; do echo "	field:$f;"; done; echo
      echo "# the syscall tracepoint as every kernel since 4.x prints it (not in BTF)"; } >"$out/syscalls/$name/format"
}
syscall sys_enter_listen "int fd" "int backlog"
syscall sys_exit_listen "long ret"
syscall sys_exit_accept "long ret"
syscall sys_exit_accept4 "long ret"
