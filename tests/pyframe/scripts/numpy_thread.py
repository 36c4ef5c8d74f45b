"""For `mprof run --lines`: a 64 MiB numpy array made in a second thread, at a known line."""
import threading

import numpy as np

keep = []


def work():
    keep.append(np.ones(8 << 20))  # @NUMPY (8 Mi float64: 64 MiB, filled by numpy's C code)


t = threading.Thread(target=work)
t.start()
t.join()
