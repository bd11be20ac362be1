#!/usr/bin/env bash
# concat.sh - join bpf/*.bt programs into one bpftrace program, as the agent does.
#
# USAGE: concat.sh FILE.bt... > all.bt
#
# bpftrace 0.17 accepts one BEGIN and one END probe per program, and #include
# lines only before the first probe. So, per file, in the order given:
# - lines starting with #include are hoisted to the top (none of ours has one);
# - the END block, which starts at a line that is exactly "END {" and ends at
#   the next line that is exactly "}", is cut out and its body kept;
# - the rest is copied as is.
# Then one "END {" with every body, in file order, and "}".
# No file has a BEGIN probe; if one ever does, it must be merged the same way.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 FILE.bt..." >&2; exit 2; }
awk '
  FNR == 1 { nfiles++ }
  /^#include/ { includes = includes $0 "\n"; next }
  /^BEGIN/ { print FILENAME ": BEGIN probes must be merged by hand" > "/dev/stderr"; bad = 1 }
  !inend && $0 == "END {" { inend = 1; ends = ends "  // " FILENAME "\n"; next }
  inend && $0 == "}" { inend = 0; next }
  inend { ends = ends $0 "\n"; next }
  { body = body $0 "\n" }
  END {
    if (bad) exit 1
    printf "%s%s", includes, body
    if (ends != "") printf "END {\n%s}\n", ends
  }
' "$@"
