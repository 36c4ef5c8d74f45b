# backend='psutil_pss' / 'psutil_uss' for the line profiler: compared with smaps_rollup read
# here, and with psutil where it is installed (what 0.61 reports).
import json
import sys

from memory_profiler import LineProfiler


def smaps(kind):
    total = 0
    with open('/proc/self/smaps_rollup') as f:
        for line in f:
            if (kind == 'pss' and line.startswith('Pss:')) or \
                    (kind == 'uss' and line.startswith('Private_')):
                total += int(line.split()[1])
    return total / 1024.0


def f():
    a = b'x' * (50 * 2 ** 20)
    return a


out = {}
for backend, kind in (('psutil_pss', 'pss'), ('psutil_uss', 'uss')):
    prof = LineProfiler(backend=backend)
    kept = prof(f)()
    truth = smaps(kind)
    try:
        import psutil
        ps = getattr(psutil.Process().memory_full_info(), kind) / 2 ** 20
    except ImportError:
        ps = None
    rows = {}
    for code, fn, first, nsrc, lines in prof.tables():
        for ln, inc, peak, occ in lines:
            rows[ln - first] = (inc / 2 ** 20, peak / 2 ** 20, occ)
    out[kind] = {'truth': truth, 'psutil': ps, 'rows': rows}
    del kept
json.dump(out, sys.stdout)
