# memory_usage(): one call of the function (not memory_profiler's up to 7),
# and a spike between two samples is still caught (VmHWM reset first).
import json
import subprocess
import sys
import time

from memory_profiler import memory_usage

calls = []


def spike():
    calls.append(1)
    x = bytearray(200 * 2 ** 20)
    del x
    time.sleep(0.05)
    return 7


base = memory_usage()
peak, ret = memory_usage((spike, (), {}), interval=0.01, max_usage=True, retval=True)
p = subprocess.Popen([sys.executable, '-c',
                      'import time; x = bytearray(50 * 2 ** 20); time.sleep(0.3)'])
child = memory_usage(p, interval=0.05, timestamps=True)
json.dump({'base': base, 'peak': peak, 'ret': ret, 'calls': len(calls),
           'child_max': max(v for v, t in child), 'child_n': len(child)}, sys.stdout)
