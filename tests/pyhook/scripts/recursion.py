import json
import sys
from memory_profiler import LineProfiler, _hook

prof = LineProfiler()


@prof
def build(n):
    if n == 0:
        return []
    chunk = [n] * (10 ** 6)
    rest = build(n - 1)
    rest.append(chunk)
    return rest


before = _hook.rss_bytes()
kept = build(5)
after = _hook.rss_bytes()
json.dump({'net': after - before, 'after': after, 'results': prof.results()}, sys.stdout)
