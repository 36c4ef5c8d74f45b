"""The run behind the report screenshot in the README (`mprof run` in Python mode, then
`mprof report`): nested profiled functions that build and release memory, and a short spike
inside a `profile.timestamp` block.
"""
import time


@profile
def read_chunk(mib):
    chunk = bytearray(mib << 20)  # touched: resident at once
    time.sleep(0.08)
    return chunk


@profile
def load(n):
    return [read_chunk(20 + 10 * i) for i in range(n)]


@profile
def transform(chunks):
    out = [bytes(c[: len(c) // 2]) for c in chunks]
    with profile.timestamp("scratch"):
        scratch = bytearray(150 << 20)
        time.sleep(0.05)
        del scratch
    time.sleep(0.1)
    return out


@profile
def main():
    chunks = load(4)
    time.sleep(0.1)
    halves = transform(chunks)
    del chunks
    time.sleep(0.2)
    return sum(len(h) for h in halves)


if __name__ == "__main__":
    main()
    time.sleep(0.2)
