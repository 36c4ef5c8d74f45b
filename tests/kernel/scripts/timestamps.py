"""FUNC lines: outer calls inner (76 MiB list, kept), then a 50 MiB timestamp block."""
import time

@profile
def inner():
    a = [1] * (10 ** 7)
    time.sleep(0.1)
    return a

@profile
def outer():
    x = inner()
    with profile.timestamp("block1"):
        b = bytearray(50 << 20)
        time.sleep(0.1)
    del b
    return x

outer()
time.sleep(0.1)
