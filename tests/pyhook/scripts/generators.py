import json
import sys
from memory_profiler import LineProfiler, _hook

prof = LineProfiler()


@prof
def gen(n):
    for i in range(n):
        block = [i] * (10 ** 6)
        yield block
    done = [0] * (10 ** 6)
    yield done


@prof
def consume():
    kept = []
    for b in gen(3):
        kept.append(b)
        other = [1] * (10 ** 6)
        kept.append(other)
    return kept


before = _hook.rss_bytes()
kept = consume()
after = _hook.rss_bytes()
json.dump({'net': after - before, 'after': after, 'results': prof.results()}, sys.stdout)
