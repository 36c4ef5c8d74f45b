# Several threads run the same profiled function at once, with a tiny
# switch interval so they interleave inside lines. Occurrences must be
# exact and nothing may crash.
import sys
import threading

sys.setswitchinterval(1e-6)


@profile
def work(n):
    out = []
    for i in range(n):
        out.append([i] * 1000)
        x = len(out)
    return x


def noise(stop):
    junk = []
    while not stop.is_set():
        junk.append([0] * 10000)
        if len(junk) > 50:
            junk.clear()


if __name__ == '__main__':
    stop = threading.Event()
    bg = threading.Thread(target=noise, args=(stop,))
    bg.start()
    ts = [threading.Thread(target=work, args=(200,)) for _ in range(4)]
    for t in ts:
        t.start()
    work(200)
    for t in ts:
        t.join()
    stop.set()
    bg.join()
