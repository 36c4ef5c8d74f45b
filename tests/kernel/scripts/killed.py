"""A profiled call completes, then the program is killed while the next one runs."""
import time


@profile
def done():
    x = bytearray(30 << 20)
    time.sleep(0.05)
    return len(x)


@profile
def forever():
    time.sleep(60)


done()
print("done", flush=True)
forever()
