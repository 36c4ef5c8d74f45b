"""mprof fleet --listen scraped by a real Prometheus: what it stored against the processes' own
/proc figures, and a spike that fell between two scrapes."""
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest

from conftest import MPROF, needs_kernel, target

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "prom"))
from promserver import prometheus  # noqa: E402,F401 (a fixture)


def vmrss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class Holder:
    """tests/targets/holder under a unique name: idle with BASE MiB, one spike when told."""

    def __init__(self, name, folder, base, spike, ms):
        exe = os.path.join(folder, name)
        if not os.path.exists(exe):
            shutil.copy(target("holder"), exe)
        self.p = subprocess.Popen([exe, str(base), str(spike), str(ms)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        self.p.stdout.readline()
        self.pid = self.p.pid

    def spike(self):
        self.p.stdin.write("go\n")
        self.p.stdin.flush()
        t0, t1, hwm, held = self.p.stdout.readline().split()[1:]
        self.p.stdout.readline()
        return float(t0), float(t1), int(held) * 1024

    def stop(self):
        if not self.p.stdin.closed:
            self.p.stdin.close()
        self.p.wait(timeout=30)


@needs_kernel
def test_prometheus_stores_exact_rss_and_the_spike_between_scrapes(open_tmp, prometheus):
    name = "mpp%s" % uuid.uuid4().hex[:8]
    holders = [Holder(name, str(open_tmp), base, 60, 20) for base in (40, 80, 120)]
    f = subprocess.Popen([MPROF, "fleet", "-q", "--name", name, "--listen", "127.0.0.1:0",
                          "-T", "0.5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = f.stderr.readline()
        m = re.search(r"metrics on port (\d+)", line)
        assert m, line
        prom = prometheus({"mprof": ["127.0.0.1:%s" % m.group(1)]})
        prom.wait_for_scrapes("mprof", 3)
        for h in holders:
            got = prom.value('mprof_resident_bytes{pid="%d"}' % h.pid)
            truth = vmrss_bytes(h.pid)
            assert abs(got - truth) <= 0.01 * truth, (h.pid, got, truth)
            assert prom.value('mprof_resident_peak_bytes{pid="%d"}' % h.pid) >= got
        assert prom.value("mprof_tracked_processes") == 3
        # a 60 MiB spike held 20 ms: between two scrapes of one second, so resident never
        # shows it, window_max does (one retry if a scrape happened to fall inside it)
        h = holders[0]
        for attempt in range(3):
            base = vmrss_bytes(h.pid)
            t0, t1, held = h.spike()
            time.sleep(2.5)
            wmax = prom.value('max_over_time(mprof_resident_window_max_bytes{pid="%d"}[4s])'
                              % h.pid)
            res = prom.value('max_over_time(mprof_resident_bytes{pid="%d"}[4s])' % h.pid)
            if res < base + (held - base) / 2:
                break
        assert wmax >= held - 4096, (wmax, held)
        assert res < base + (held - base) / 2, "a scrape fell inside the spike: %r" % res
        for h in holders:
            h.stop()
        prom.wait_until(lambda: prom.value("mprof_process_exits_total") >= 3, timeout=20,
                        what="the exits counted")
    finally:
        for h in holders:
            if h.p.poll() is None:
                h.p.kill()
        f.send_signal(signal.SIGINT)
        f.communicate(timeout=30)
    assert f.returncode == 0
