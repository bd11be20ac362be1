#!/bin/bash
# compile-check.sh - compile and type-check bpftrace programs against kernel BTF, without attaching
#
# Usage: compile-check.sh [--strict] [-b BTF_FILE]... [FILE.bt]...
#   FILE.bt      programs to check (default: bpf/kprobe/*.bt of this repository)
#   -b BTF_FILE  also check against this BTF (raw .BTF section, e.g. the one setup.sh extracts from
#                Debian's 6.1 kernel into /var/cache/backlog-agent-qemu/btf-<version>); repeatable
#   --strict     count SKIP and bpftrace warnings as failures (for kernels that can run everything)
# Checks each program against the running kernel's BTF (/sys/kernel/btf/vmlinux) and each -b file
# with `bpftrace -d --emit-elf` (bpftrace 0.17: a dry run that resolves types and generates
# BPF code, then stops before loading). Programs with kfunc:/kretfunc: probes can only be checked
# where the running kernel has BPF trampolines (`bpftrace --info`: "kfunc: yes"); elsewhere SKIP.
# Prints one line per program and BTF: PASS|FAIL|SKIP FILE BTF, then bpftrace's errors for FAIL.
# Exit status: 0 all passed (or skipped), 1 a failure, 2 usage.
set -uo pipefail

strict=0
btfs=()
while [ $# -gt 0 ]; do
    case $1 in
        --strict) strict=1; shift ;;
        -b) [ -r "${2:-}" ] || { echo "compile-check: no BTF file ${2:-}" >&2; exit 2; }; btfs+=("$2"); shift 2 ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        --) shift; break ;;
        -*) echo "compile-check: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
repo=$(cd "$(dirname "$0")/../../.." && pwd)
files=("$@")
[ ${#files[@]} -gt 0 ] || files=("$repo"/bpf/kprobe/*.bt)
command -v bpftrace >/dev/null || { echo "compile-check: bpftrace not found" >&2; exit 2; }

kfunc_ok=0
bpftrace --info 2>&1 | grep -q 'kfunc: yes' && kfunc_ok=1
# Without the list of traceable functions bpftrace warns that every kprobe is "not traceable":
# noise then, a real finding (inlined or notrace function) where the list can be read.
noise='RLIMIT_MEMLOCK'
if ! head -c1 /sys/kernel/tracing/available_filter_functions >/dev/null 2>&1; then
    noise='RLIMIT_MEMLOCK|is not traceable'
    echo "note: /sys/kernel/tracing/available_filter_functions unreadable: whether functions are traceable is not checked"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

failed=0
check() {  # check FILE BTF_LABEL [BTF_FILE]
    local file=$1 label=$2 btf=${3:-} log=$work/log rc warnings
    if grep -Eq '^[[:space:]]*(kfunc|kretfunc):' "$file" && [ "$kfunc_ok" = 0 ]; then
        echo "SKIP $file $label (kfunc not available on the running kernel)"
        [ "$strict" = 1 ] && failed=1
        return
    fi
    if [ -n "$btf" ]; then
        BPFTRACE_BTF=$btf bpftrace -d --emit-elf "$work/out.elf" "$file" 1 100 >"$log" 2>&1; rc=$?
    else
        bpftrace -d --emit-elf "$work/out.elf" "$file" 1 100 >"$log" 2>&1; rc=$?
    fi
    # -d prints the AST and LLVM IR: keep only bpftrace's own diagnostics. The RLIMIT_MEMLOCK
    # message is printed on every start on memcg-accounted kernels and means nothing.
    warnings=$(grep -E 'WARNING:' "$log" | grep -Ev "$noise" || true)
    if [ $rc -eq 0 ] && [ -s "$work/out.elf" ] && { [ "$strict" = 0 ] || [ -z "$warnings" ]; }; then
        echo "PASS $file $label"
        [ -n "$warnings" ] && sed 's/^/  /' <<<"$warnings"
    else
        echo "FAIL $file $label"
        { grep -E 'ERROR:|WARNING:' "$log" | grep -Ev "$noise" || tail -n 20 "$log"; } | sed 's/^/  /'
        failed=1
    fi
    rm -f "$work/out.elf"
}

for f in "${files[@]}"; do
    check "$f" "running-kernel-$(uname -r)"
    for b in "${btfs[@]+"${btfs[@]}"}"; do check "$f" "$b" "$b"; done
done
exit $failed
