# Holds argv[1] MiB for a while and prints its own PSS and USS (smaps_rollup) meanwhile.
import sys
import time

x = b'x' * (int(sys.argv[1]) * 2 ** 20)


def smaps(kind):
    total = 0
    with open('/proc/self/smaps_rollup') as f:
        for line in f:
            if (kind == 'pss' and line.startswith('Pss:')) or \
                    (kind == 'uss' and line.startswith('Private_')):
                total += int(line.split()[1])
    return total / 1024.0


time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 0.6)
print('%.3f %.3f' % (smaps('pss'), smaps('uss')), flush=True)
time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 0.6)
