#!/bin/sh
# make demo: record the bundled example with mprof run and say where the .dat went and its peak;
# as root, the same with --lines: the lines that grew the memory.
set -eu
MPROF=${1:-build/mprof}
here=$(dirname "$0")
out=${MPROF_DEMO_OUT:-build/demo.dat}
rm -f "$out"
"$MPROF" run --nopython -o "$out" "$here/spiky.py"
echo
echo "recorded: $out ($(grep -c '^MEM' "$out") MEM lines)"
"$MPROF" peak "$out"
"$MPROF" plot -o "${out%.dat}.png" "$out" >/dev/null
echo "plotted: ${out%.dat}.png"
"$MPROF" report -o "${out%.dat}.html" "$out"
echo "report: ${out%.dat}.html (open it in a browser)"
# which line grew the memory, read by BPF from the interpreter's frames (root: the kernel backend)
if [ "$(id -u)" = 0 ]; then
	lines=${out%.dat}_lines.dat
	rm -f "$lines"
	echo
	"$MPROF" run --lines --top 5 -o "$lines" --stacks "${out%.dat}.stacks" "$here/spiky.py"
	"$MPROF" report -o "${lines%.dat}.html" "$lines"
	echo "lines: $lines, stacks: ${out%.dat}.stacks, report: ${lines%.dat}.html"
fi
