# --pdb-mmem with the loader's page (a memfd we write, as in shared_page.py): the RSS is what
# this script says, so the line where the limit is crossed is known exactly. Line 3 of f spikes
# to 300 MiB and falls back to 150 within one line; g reaches 120 MiB.
import mmap
import os
import struct

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


@profile
def g():
    set_rss(120)
    in_g = 1
    return in_g


@profile
def f():
    set_rss(100)
    g()
    set_rss(300); set_rss(150)  # noqa: E702
    after_spike = 1
    return after_spike


set_rss(50)
f()
