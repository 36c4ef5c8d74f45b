#!/bin/sh
# make demo: record the bundled example with mprof run and say where the .dat went and its peak.
set -eu
MPROF=${1:-build/mprof}
here=$(dirname "$0")
out=${MPROF_DEMO_OUT:-build/demo.dat}
rm -f "$out"
"$MPROF" run --nopython -o "$out" "$here/spiky.py"
echo
echo "recorded: $out ($(grep -c '^MEM' "$out") MEM lines)"
if "$MPROF" peak "$out" 2>/dev/null; then :; else
	awk '$1 == "MEM" && $2 > m { m = $2 } END { printf "%s\t%.3f MiB\n", FILENAME, m }' "$out"
fi
