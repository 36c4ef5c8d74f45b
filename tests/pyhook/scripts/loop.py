# Loops: increments add up to the net change; a rebinding line that
# allocates before it frees is charged once, not once per iteration.
import json
import sys
from memory_profiler import LineProfiler, _hook

prof = LineProfiler()


def loop():
    acc = []
    for i in range(5):
        acc.append([0] * (10 ** 6))
        b = [2] * (2 * 10 ** 6)
    del b
    return acc


def rebind():
    for i in range(2):
        b = [2] * (2 * 10 ** 6)
    return len(b)


loop_p = prof(loop)
rebind_p = prof(rebind)
before = _hook.rss_bytes()
kept = loop_p()
after = _hook.rss_bytes()
rebind_p()
json.dump({'net': after - before, 'after': after, 'results': prof.results()}, sys.stdout)
