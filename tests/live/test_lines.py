"""The live view without a terminal: one plain line per process per interval, parsed whole,
checked interval by interval against the synthetic fleet's schedule (tests/live/live_driver.c)."""
import os
import select
import signal
import subprocess
import time

from conftest import PROCS, SETTLE, base_env, parse_lines

# the driver's comms (live_driver.c), as bytes: blanks, a backslash, UTF-8, control, cut, empty
COMMS = [b"python3", b"my worker", b"back\\slash", "caf\u00e9".encode(),
         "\u5185\u5b58\u6d4b\u8bd5".encode(), b"\x01ctl\tname", b"abcdefghijklmn\xc3",
         b"verylongcommand", b"-", b"", b"postgres", b"nginx"]
USERS = [b"root", b"alice", b"nobody", b"a-very-long-username", b"1001",
         b"svc-batch-ingest-worker-account-number-42"]
BIRTHS = {5000: 5, 5001: 7, 5002: 10}
EXITS = {1014: 8, 1035: 11, 5001: 13}
LEAVES = {1035: 14}


def run(driver, *args, timeout=60):
    p = subprocess.run([driver] + list(args), env=base_env(), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout)
    err = p.stderr.decode("utf-8", "replace")
    assert "Sanitizer" not in err and "runtime error" not in err, err
    return p, err


def test_every_line_parses_and_follows_the_fleet(driver):
    ticks = SETTLE + 8
    p, err = run(driver, "--interval", "0.02", "--ticks", str(ticks))
    assert p.returncode == 0, err
    assert "end: ticks after %d ticks" % ticks in err
    text = p.stdout.decode("ascii")  # every byte that is not plain ASCII is escaped
    intervals = parse_lines(text)
    assert len(intervals) == ticks
    prev_epoch = 0
    for n, (total, procs) in enumerate(intervals):
        pids = [q["pid"] for q in procs]
        assert pids == sorted(pids), "not by pid at interval %d" % n
        assert total["epoch"] > prev_epoch
        prev_epoch = total["epoch"]
        want = {1000 + 7 * i for i in range(PROCS)}
        want |= {pid for pid, born in BIRTHS.items() if n >= born}
        want -= {pid for pid, t in LEAVES.items() if n >= t}
        assert set(pids) == want, n
        for q in procs:
            gone = q["pid"] in EXITS and n >= EXITS[q["pid"]]
            assert q["state"] == ("exited" if gone else "alive"), (n, q)
            assert q["comm"] in COMMS + [b"late-worker"], q
            assert q["user"] in USERS, q
            assert q["peak"] >= q["rss"], q
            assert q["peak_t"] <= q["epoch"] + 1e-3, q
        alive = sum(q["state"] == "alive" for q in procs)
        assert total["tracked"] == alive, n
        assert total["started"] == sum(n >= b for b in BIRTHS.values()), n
        assert total["exited"] == sum(n >= e for e in EXITS.values()), n
    # every special name came through the escaping unchanged, a long user name whole
    names = {q["comm"] for q in intervals[0][1]}
    assert set(COMMS) <= names
    assert {q["user"] for q in intervals[-1][1]} == set(USERS)
    # an exited row keeps its last values while it stays
    last = {q["pid"]: q for q in intervals[EXITS[1014]][1]}
    for total, procs in intervals[EXITS[1014]:]:
        q = {r["pid"]: r for r in procs}[1014]
        assert (q["rss"], q["peak"], q["growth"]) == (last[1014]["rss"], last[1014]["peak"],
                                                       last[1014]["growth"])
    # growth is signed
    assert any(q["growth"] < 0 for q in intervals[-1][1])
    assert any(q["growth"] > 0 for q in intervals[-1][1])


def test_lines_are_flushed_each_interval(driver):
    """A reader sees each interval as it ends, not when the driver exits."""
    proc = subprocess.Popen([driver, "--interval", "0.2", "--duration", "60"], env=base_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        buf = b""
        end = time.monotonic() + 10
        # the header and the first interval: 3 + 1 + PROCS lines
        while buf.count(b"\n") < 4 + PROCS and time.monotonic() < end:
            r, _, _ = select.select([proc.stdout], [], [], 0.5)
            if r:
                buf += os.read(proc.stdout.fileno(), 65536)
        assert buf.count(b"\n") >= 4 + PROCS, buf
        assert proc.poll() is None, "the driver ended early"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert b"end: signal" in err
    parse_lines((buf + out).decode("ascii"))


def test_reader_gone(driver):
    """When the reader of the lines goes away, the view reports EPIPE at once, one line."""
    proc = subprocess.Popen([driver, "--interval", "0.05", "--duration", "60"], env=base_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1
    lines = err.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("live_driver: error: the view failed"), err
    assert lines[0].endswith("Broken pipe"), err


def test_screen_without_a_terminal(driver):
    p, err = run(driver, "--screen", "--duration", "0.1")
    assert p.returncode == 1
    assert err.strip() == ("live_driver: error: cannot start the view: "
                           "Inappropriate ioctl for device"), err
    assert p.stdout == b""
