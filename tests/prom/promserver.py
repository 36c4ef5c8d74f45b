"""A real Prometheus server for tests: Debian's `prometheus`, on 127.0.0.1 with a free port,
its own temporary storage and a generated configuration that scrapes the given targets.

    from promserver import PromServer, prometheus   # `prometheus` is a pytest fixture

    def test_x(prometheus):
        prom = prometheus({"mprof": ["127.0.0.1:9123"]})   # job name -> targets
        prom.wait_for_scrapes("mprof", 5)
        for s in prom.query('mprof_resident_bytes{job="mprof"}'):
            print(s["metric"], s["value"])

Outside pytest, `with PromServer(jobs, workdir) as prom: ...` does the same. The fixture skips
the test, with the reason, when the prometheus binary is missing. Nothing here needs root.
"""
import atexit
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

try:
    import pytest
except ImportError:  # usable without pytest too
    pytest = None


def prometheus_binary():
    """The path of the prometheus binary, or None."""
    return shutil.which("prometheus")


def free_port():
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PromError(Exception):
    pass


_running = set()


@atexit.register
def _kill_leftovers():
    """A test run that dies before its teardown must not leave servers behind."""
    for proc in list(_running):
        if proc.poll() is None:
            proc.kill()


class PromServer:
    """One Prometheus process. @jobs maps a job name to a list of HOST:PORT targets (a plain
    list means one job named "mprof"). @scrape_interval is in seconds; @rule_files are paths
    of rule files to load (evaluated every scrape interval). @workdir holds the configuration,
    the TSDB and prometheus.log (a temporary folder, removed by stop(), when not given)."""

    def __init__(self, jobs, workdir=None, scrape_interval=1.0, rule_files=(),
                 metrics_path="/metrics", extra_args=()):
        if isinstance(jobs, (list, tuple)):
            jobs = {"mprof": list(jobs)}
        self.jobs = {k: list(v) for k, v in jobs.items()}
        self.scrape_interval = scrape_interval
        self.rule_files = [os.path.abspath(p) for p in rule_files]
        self.metrics_path = metrics_path
        self.extra_args = list(extra_args)
        self._own_dir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="mprof-prom-")
        self.proc = None
        self.port = None
        self.url = None
        self.log_path = os.path.join(self.workdir, "prometheus.log")

    # ---- life ----------------------------------------------------------------------------
    def config(self):
        """The configuration as a dict (JSON is YAML, so no YAML library is needed)."""
        iv = "%gs" % self.scrape_interval
        return {
            "global": {"scrape_interval": iv, "scrape_timeout": iv, "evaluation_interval": iv},
            "rule_files": self.rule_files,
            "scrape_configs": [
                {"job_name": job, "metrics_path": self.metrics_path,
                 "static_configs": [{"targets": targets}]}
                for job, targets in self.jobs.items()
            ],
        }

    def start(self, timeout=30.0):
        binary = prometheus_binary()
        if not binary:
            raise PromError("prometheus is not installed (Debian package prometheus)")
        cfg = os.path.join(self.workdir, "prometheus.yml")
        with open(cfg, "w") as f:
            json.dump(self.config(), f, indent=1)
        last = ""
        for _ in range(3):  # the free port may be taken between free_port() and the bind
            self.port = free_port()
            self.url = "http://127.0.0.1:%d" % self.port
            log = open(self.log_path, "w")
            self.proc = subprocess.Popen(
                [binary, "--config.file=" + cfg,
                 "--storage.tsdb.path=" + os.path.join(self.workdir, "tsdb"),
                 "--web.listen-address=127.0.0.1:%d" % self.port,
                 "--storage.tsdb.retention.time=1d"] + self.extra_args,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
            _running.add(self.proc)
            log.close()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self._ready():
                    return self
                time.sleep(0.1)
            last = self._log_tail()
            self._kill()
            if "address already in use" not in last:
                break
        raise PromError("prometheus did not become ready:\n" + last)

    def _ready(self):
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _log_tail(self, n=30):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        _running.discard(self.proc)

    def stop(self):
        """SIGTERM, then SIGKILL after 10 s; removes a temporary workdir."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._kill()
        _running.discard(self.proc)
        self.proc = None
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- the HTTP API --------------------------------------------------------------------
    def api(self, path, **params):
        """GET /api/v1/<path> with @params; returns its "data", raises PromError otherwise."""
        q = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        url = "%s/api/v1/%s%s" % (self.url, path, "?" + q if q else "")
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            body = json.load(e)
        if body.get("status") != "success":
            raise PromError("%s: %s" % (url, body.get("error", body)))
        return body["data"]

    def query(self, expr, time=None):
        """An instant query: the list of results ({"metric": {...}, "value": [t, "v"]} for a
        vector, {"metric", "values": [[t, "v"], ...]} for a range selector like x[1h])."""
        return self.api("query", query=expr, time=time)["result"]

    def query_range(self, expr, start, end, step):
        return self.api("query_range", query=expr, start=start, end=end, step=step)["result"]

    def value(self, expr, time=None):
        """The single value of a query that gives one sample (NaN if none)."""
        r = self.query(expr, time)
        if not r:
            return math.nan
        if len(r) != 1:
            raise PromError("%s: %d results, expected one" % (expr, len(r)))
        return float(r[0]["value"][1])

    def samples(self, selector, window="1h"):
        """Every raw sample of the series matching @selector: a dict from the frozen label
        set (a tuple of sorted items, __name__ included) to a list of (t, value)."""
        out = {}
        for s in self.query("%s[%s]" % (selector, window)):
            key = tuple(sorted(s["metric"].items()))
            out[key] = [(float(t), float(v)) for t, v in s["values"]]
        return out

    def metadata(self, metric=None):
        """What the scrapes said of each metric family: {name: [{type, help, unit}, ...]}."""
        return self.api("metadata", metric=metric)

    def targets(self):
        return self.api("targets")["activeTargets"]

    def wait_until(self, cond, timeout=30.0, what="a condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            time.sleep(0.2)
        raise PromError("timed out waiting for %s; prometheus log:\n%s"
                        % (what, self._log_tail()))

    def wait_for_scrapes(self, job, n, timeout=60.0):
        """Wait until every target of @job has been scraped successfully @n times."""
        def done():
            r = self.query('sum_over_time(up{job="%s"}[1h])' % job)
            return len(r) == len(self.jobs[job]) and all(float(s["value"][1]) >= n for s in r)
        self.wait_until(done, timeout, "%d scrapes of job %s" % (n, job))


if pytest is not None:
    @pytest.fixture
    def prometheus(tmp_path):
        """A factory: prometheus(jobs, **kw) starts a PromServer (see its arguments) in the
        test's tmp_path and returns it; every server it started is stopped at teardown. Skips
        the test when prometheus is not installed."""
        if not prometheus_binary():
            pytest.skip("prometheus is not installed (Debian package prometheus)")
        started = []

        def start(jobs, **kw):
            d = tmp_path / ("prometheus%d" % len(started))
            d.mkdir()
            prom = PromServer(jobs, workdir=str(d), **kw)
            started.append(prom)
            return prom.start()

        yield start
        for prom in started:
            prom.stop()
