"""Fixtures of the exporter tests: synth_exporter processes (tests/prom/synth_exporter.c) and
the Prometheus server of promserver.py. `make test-exporter` sets SYNTH_EXPORTER."""
import json
import os
import signal
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from promserver import prometheus  # noqa: E402,F401  (the fixture)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


class Synth:
    """One synth_exporter: .port, .log (its JSON lines, see entries()), stop() -> stats."""

    def __init__(self, binary, args, log):
        self.log = log
        self.proc = subprocess.Popen([binary, "--log", log] + list(args),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("port "):
            self.proc.kill()
            raise RuntimeError("synth_exporter did not start: %r %s"
                               % (line, self.proc.stderr.read()))
        self.port = int(line.split()[1])
        self.addr = "127.0.0.1:%d" % self.port
        self.stats = None

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM; returns the stats line as a dict of ints (requests, scrapes, ...)."""
        if self.stats is not None:
            return self.stats
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=10)
        assert self.proc.returncode == 0, "synth_exporter failed: %s" % err
        line = [ln for ln in out.splitlines() if ln.startswith("stats ")][-1]
        self.stats = {k: int(v) for k, v in (w.split("=") for w in line.split()[1:])}
        return self.stats

    def entries(self):
        """Every line of the log: table reads ({"t", "window", "closed", "totals", "rows"})
        and spike records ({"spike_start", "spike_end"})."""
        with open(self.log) as f:
            return [json.loads(ln) for ln in f if ln.endswith("\n")]


@pytest.fixture
def synth(tmp_path):
    binary = os.environ.get("SYNTH_EXPORTER") or os.path.join(ROOT, "build/tests/synth_exporter")
    if not os.access(binary, os.X_OK):
        pytest.skip("synth_exporter is not built (make test-exporter builds it)")
    started = []

    def start(*args):
        s = Synth(binary, args, str(tmp_path / ("synth%d.jsonl" % len(started))))
        started.append(s)
        return s

    yield start
    for s in started:
        if s.alive():
            s.proc.kill()
            s.proc.wait()
