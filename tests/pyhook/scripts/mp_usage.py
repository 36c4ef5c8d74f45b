# memory_usage(multiprocess=True) of a Popen whose two children hold 30 and 60 MiB: each sample
# is [main, child1, ...]; each child reports its own VmHWM (the ground truth of its peak).
import json
import subprocess
import sys
import tempfile

from memory_profiler import memory_usage

CHILD = r'''
import os, sys, time
def work(mib, path):
    x = b'x' * (mib * 2 ** 20)
    time.sleep(0.8)
    with open('/proc/self/status') as f:
        hwm = [l for l in f if l.startswith('VmHWM:')][0].split()[1]
    with open(path, 'w') as f:
        f.write('%d %s' % (os.getpid(), hwm))
    time.sleep(0.3)
pids = []
for i, mib in enumerate((30, 60)):
    pid = os.fork()
    if pid == 0:
        work(mib, sys.argv[1] + str(i))
        os._exit(0)
    pids.append(pid)
for p in pids:
    os.waitpid(p, 0)
'''


def hwms(prefix):
    out = {}
    for i in range(2):
        with open(prefix + str(i)) as f:
            pid, kb = f.read().split()
        out[int(pid)] = int(kb) / 1024.0
    return out


d = tempfile.mkdtemp()
p = subprocess.Popen([sys.executable, '-c', CHILD, d + '/a'])
samples = memory_usage(p, interval=0.05, multiprocess=True)
p.wait()
res = {'samples': samples, 'hwm_a': hwms(d + '/a')}
p = subprocess.Popen([sys.executable, '-c', CHILD, d + '/b'])
with open(d + '/s.dat', 'w') as f:
    res['stream_ret'] = memory_usage(p, interval=0.05, multiprocess=True, stream=f)
p.wait()
res['hwm_b'] = hwms(d + '/b')
with open(d + '/s.dat') as f:
    res['dat'] = f.read().splitlines()
short = []
for _ in range(5):
    q = subprocess.Popen([sys.executable, '-c', 'pass'])
    short.append(memory_usage(q, interval=0.005))
res['short'] = short
res['pid_n'] = len(memory_usage(-1, interval=0.02, timeout=0.2))
res['pid_max'] = type(memory_usage(-1, interval=0.02, timeout=0.1, max_usage=True)).__name__
res['call_stream'] = memory_usage((sum, ([1, 2],)), stream=open(d + '/c.dat', 'w'))
with open(d + '/c.dat') as f:
    res['call_dat'] = f.read().splitlines()
json.dump(res, sys.stdout)
