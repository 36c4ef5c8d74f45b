"""Fixtures for the live view tests: the driver, the synthetic fleet's ground truth, tmux."""
import os
import shutil
import subprocess
import time
import unicodedata

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# The driver's synthetic fleet (tests/live/live_driver.c): 40 base processes, three born
# later, one exited row that leaves the table; nothing changes from tick SETTLE on.
PROCS = 40
SETTLE = 16
INTERVAL = 0.05


def base_env():
    env = dict(os.environ)
    for k in ("LINES", "COLUMNS", "TMUX", "TMUX_PANE"):
        env.pop(k, None)
    env["TZ"] = "UTC"
    env["LANG"] = "C.UTF-8"
    env.pop("LC_ALL", None)
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


@pytest.fixture(scope="session")
def driver():
    path = os.environ.get("LIVE_DRIVER", os.path.join(ROOT, "build", "tests", "live_driver"))
    if not os.access(path, os.X_OK):
        pytest.skip("%s is not built (run make test-live)" % path)
    return os.path.abspath(path)


def unescape(field):
    """A <user> or <comm> field of the plain lines back to its bytes."""
    if field == "-":
        return b""
    out = bytearray()
    i = 0
    while i < len(field):
        if field[i] == "\\":
            assert field[i + 1] == "x", field
            out.append(int(field[i + 2:i + 4], 16))
            i += 4
        else:
            c = field[i]
            assert "\x21" <= c <= "\x7e", field
            out.append(ord(c))
            i += 1
    return bytes(out)


def parse_lines(text):
    """The plain lines as a list of intervals: (total dict, [proc dicts])."""
    lines = text.split("\n")
    assert lines[-1] == "", "the output does not end with a whole line"
    lines = lines[:-1]
    assert lines[:3] == [
        "# mprof fleet v1",
        "# total <epoch> <tracked> <started> <exited> <oom_kills> <records_lost> "
        "<procs_dropped>",
        "# proc <epoch> <pid> <user> <comm> <rss_bytes> <peak_bytes> <peak_epoch> "
        "<growth_bytes> <children> <state>",
    ], lines[:3]
    intervals = []
    for line in lines[3:]:
        f = line.split(" ")
        assert all(f), "an empty field in %r" % line
        if f[0] == "total":
            assert len(f) == 8, line
            t = dict(zip(("epoch", "tracked", "started", "exited", "oom_kills",
                          "records_lost", "dropped"),
                         [float(f[1])] + [int(x) for x in f[2:]]))
            intervals.append((t, []))
        elif f[0] == "proc":
            assert len(f) == 11, line
            assert intervals, "a proc line before the first total line"
            p = {
                "epoch": float(f[1]), "pid": int(f[2]), "user": unescape(f[3]),
                "comm": unescape(f[4]), "rss": int(f[5]), "peak": int(f[6]),
                "peak_t": float(f[7]), "growth": int(f[8]), "children": int(f[9]),
                "state": f[10],
            }
            assert p["state"] in ("alive", "exited"), line
            assert p["epoch"] == intervals[-1][0]["epoch"], line
            intervals[-1][1].append(p)
        else:
            raise AssertionError("unknown line %r" % line)
    return intervals


@pytest.fixture(scope="session")
def final_table(driver):
    """The settled table (plain lines, last interval): the ground truth for the screen."""
    p = subprocess.run([driver, "--lines", "--interval", "0.01", "--ticks", str(SETTLE + 5)],
                       env=base_env(), stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    intervals = parse_lines(p.stdout.decode("ascii"))
    assert len(intervals) == SETTLE + 5, len(intervals)
    return intervals[-1]


def order(rows, key):
    """The screen's order: live processes first, the key largest first, then the pid."""
    return [r["pid"] for r in sorted(
        rows, key=lambda r: (r["state"] != "alive", -r[key], r["pid"]))]


def cells(line):
    """A screen line as display cells: a wide character takes two, the second ''."""
    out = []
    for ch in line:
        if unicodedata.combining(ch):
            out[-1] += ch
            continue
        out.append(ch)
        if unicodedata.east_asian_width(ch) in ("W", "F"):
            out.append("")
    return out


def width(line):
    return len(cells(line))


class Tmux:
    """One tmux server of our own (a private socket, no configuration) with one pane."""

    def __init__(self, tmp, w=80, h=24):
        self.tmp = str(tmp)
        self.sock = os.path.join(self.tmp, "tmux.sock")
        self.env = base_env()
        # LeakSanitizer stops the world with ptrace at exit; drivers whose pane was killed
        # under it (tmux kill-server) were seen spinning there for an hour at 15% CPU each.
        # The plain-line tests, run without tmux, keep the leak check.
        self.env["ASAN_OPTIONS"] = "detect_leaks=0"
        self.w, self.h = w, h

    def tmux(self, *args, check=True):
        p = subprocess.run(["tmux", "-S", self.sock, "-f", "/dev/null"] + list(args),
                           env=self.env, capture_output=True, timeout=20)
        if check:
            assert p.returncode == 0, (args, p.stderr)
        return p.stdout.decode("utf-8", "replace")

    def start(self, argv, stderr_to_pane=False, env=""):
        """Run @argv in the pane, in a wrapper that records the terminal's modes around it."""
        script = os.path.join(self.tmp, "run.sh")
        redir = "" if stderr_to_pane else ' 2> "$d/stderr"'
        with open(script, "w") as f:
            f.write('d="%s"\n'
                    "trap : INT\n"  # ^C is the driver's; the wrapper goes on to record
                    'stty -g > "$d/stty.before"\n'
                    "echo BEFORE-MARK\n"
                    '%s "$@"%s\n'
                    'echo $? > "$d/rc"\n'
                    'stty -g > "$d/stty.after"\n'
                    "echo AFTER-MARK\n"
                    'touch "$d/done"\n'
                    "exec sleep 1000\n" % (self.tmp, env, redir))
        cmd = " ".join(["sh", script] + ["'%s'" % a for a in argv])
        self.tmux("new-session", "-d", "-s", "t", "-x", str(self.w), "-y", str(self.h), cmd)

    def keys(self, *keys):
        self.tmux("send-keys", "-t", "t", *keys)

    def screen(self):
        lines = self.tmux("capture-pane", "-p", "-t", "t").split("\n")
        if lines and lines[-1] == "":
            lines = lines[:-1]
        return lines

    def flag(self, name):
        return self.tmux("display-message", "-p", "-t", "t", "#{%s}" % name).strip()

    def resize(self, w, h):
        self.tmux("resize-window", "-t", "t", "-x", str(w), "-y", str(h))
        self.w, self.h = w, h

    def wait(self, pred, timeout=10.0, what="the screen"):
        """Poll the screen until pred(lines) is true; the last screen in the failure."""
        end = time.monotonic() + timeout
        lines = []
        while time.monotonic() < end:
            lines = self.screen()
            if pred(lines):
                return lines
            time.sleep(0.03)
        raise AssertionError("timed out waiting for %s; screen:\n%s" % (what, "\n".join(lines)))

    def wait_done(self, timeout=15.0):
        path = os.path.join(self.tmp, "done")
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if os.path.exists(path):
                return
            time.sleep(0.03)
        raise AssertionError("the driver did not end; screen:\n%s" % "\n".join(self.screen()))

    def tick(self):
        """The tick the driver shows now (its --tick-file), -1 before the first."""
        try:
            with open(os.path.join(self.tmp, "tick")) as f:
                return int(f.read())
        except (OSError, ValueError):
            return -1

    def history(self):
        """Everything the pane printed, the lines scrolled off included."""
        return self.tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "t")

    def read(self, name):
        with open(os.path.join(self.tmp, name), "rb") as f:
            return f.read()

    def kill(self):
        self.tmux("kill-server", check=False)


@pytest.fixture
def tmux_factory(tmp_path):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (Debian package tmux; make deps installs it)")
    made = []

    def make(w=80, h=24, sub="t"):
        d = tmp_path / ("%s%d" % (sub, len(made)))
        d.mkdir()
        t = Tmux(d, w, h)
        made.append(t)
        return t
    yield make
    for t in made:
        t.kill()
