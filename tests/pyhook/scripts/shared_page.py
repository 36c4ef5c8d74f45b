# Plays the BPF loader: rewrites the shared rss page between lines, so the
# expected report is exact. TEST_FD is a second fd of the same memfd (the
# hook closes the one named by MPROF_RSS_FD after mapping it).
import json
import mmap
import os
import struct
import sys

m = mmap.mmap(int(os.environ['TEST_FD']), 4096)
MIB = 2 ** 20
OFF_USED, OFF_RSS, OFF_PEAK = 12, 24, 32


def set_rss(mib):
    v = int(mib * MIB)
    struct.pack_into('Q', m, OFF_RSS, v)
    used = struct.unpack_from('I', m, OFF_USED)[0]
    for i in range(min(used, 64)):
        p = struct.unpack_from('Q', m, OFF_PEAK + 8 * i)[0]
        struct.pack_into('Q', m, OFF_PEAK + 8 * i, max(p, v))


from memory_profiler import LineProfiler, _hook  # noqa: E402

prof = LineProfiler()


@prof
def g():
    set_rss(170)
    return 1


@prof
def f():
    set_rss(100)
    set_rss(300); set_rss(150)  # noqa: E702
    g()
    set_rss(100)
    return 0


set_rss(50)
f()
json.dump({'source': _hook.rss_source(), 'results': prof.results()}, sys.stdout)
