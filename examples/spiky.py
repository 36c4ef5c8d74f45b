"""The bundled example for `make demo`: a short burst of memory a 10 Hz sampler misses.

It builds a 150 MiB list, drops it, then makes three 200 MiB spikes that each stay resident for
about 20 ms. mprof's kernel backend records every one of them at full height.
"""
import mmap
import time


def build_and_drop():
    data = [2] * (20 * 1024 * 1024)  # 160 MiB of pointers
    time.sleep(0.3)
    del data


def spike(mib, hold):
    m = mmap.mmap(-1, mib << 20)
    chunk = b"\1" * (1 << 20)
    for _ in range(mib):  # touch every page
        m.write(chunk)
    time.sleep(hold)
    m.close()


if __name__ == "__main__":
    build_and_drop()
    time.sleep(0.2)
    for _ in range(3):
        spike(200, 0.02)
        time.sleep(0.25)
