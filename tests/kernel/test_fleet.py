"""mprof fleet: selectors decided in the kernel, real processes, real cgroups, real users."""
import os
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from conftest import MPROF, Dat, needs_kernel, target

PAGE_KB = os.sysconf("SC_PAGESIZE") // 1024


def cgroup2_root():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.startswith("cgroup2 "):
                return left.split()[4]
    return None


class Fleet:
    """mprof fleet in the background, plain lines on stdout (mprof/live.h's format)."""

    def __init__(self, args, cwd, interval="0.2"):
        self.p = subprocess.Popen([MPROF, "fleet", "--plain", "-T", interval, "--stats"] + args,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  cwd=cwd)
        self.lines = []
        # ready: the programs are attached and the running processes discovered once the
        # first interval's "total" line is out
        while True:
            line = self.p.stdout.readline()
            assert line, "mprof fleet ended: %s" % self.p.stderr.read()
            self.lines.append(line)
            if line.startswith("total "):
                break

    def stop(self):
        self.p.send_signal(signal.SIGINT)
        out, err = self.p.communicate(timeout=30)
        assert self.p.returncode == 0, err
        rows = {}
        for line in self.lines + out.splitlines(True):
            f = line.split()
            if not f or f[0] != "proc":
                continue
            _, t, pid, user, comm, rss, peak, peak_t, growth, kids, state = f
            rows.setdefault(int(pid), []).append(
                dict(t=float(t), user=user, comm=comm, rss=int(rss), peak=int(peak),
                     state=state, children=int(kids)))
        return rows, err


def alloc(mib, ms, exe=None, user=None, cgroup_procs=None):
    """Start tests/targets/alloc (touch MIB, report its VmHWM, hold MS, exit)."""
    cmd = [exe or target("alloc"), str(mib), str(ms)]
    if user is not None:
        cmd = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user, "--clear-groups"] + cmd
    if cgroup_procs:
        # join the cgroup first, then exec: the kernel sees the exec inside it
        cmd = ["sh", "-c", 'echo $$ > "$0" && exec "$@"', cgroup_procs] + cmd
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)


def vmhwm_kb(out):
    return [int(line.split()[1]) for line in out.splitlines() if line.startswith("VmHWM")][0]


@needs_kernel
def test_selectors_pick_later_processes_and_nothing_else(open_tmp):
    """--name, --cgroup and --user, each on real processes started after the fleet."""
    root = cgroup2_root()
    if not root:
        pytest.skip("no cgroup v2 hierarchy")
    cg = os.path.join(root, "mprof-test-%s" % uuid.uuid4().hex[:8])
    os.mkdir(cg)
    name = "mpf%s" % uuid.uuid4().hex[:8]
    exe = shutil.copy(target("alloc"), os.path.join(str(open_tmp), name))
    try:
        for sel, start in [
            (["--name", name[:12]], lambda mib: alloc(mib, 300, exe=exe)),
            (["--cgroup", os.path.basename(cg)],
             lambda mib: alloc(mib, 300, cgroup_procs=os.path.join(cg, "cgroup.procs"))),
            (["--user", "nobody", "--name", "alloc"], lambda mib: alloc(mib, 300, user=65534)),
        ]:
            f = Fleet(sel, str(open_tmp))
            other = alloc(25, 300)  # matches none of them (root, not in the cgroup, not the name)
            mine = start(40)
            out_mine, _ = mine.communicate(timeout=30)
            other.communicate(timeout=30)
            time.sleep(0.5)
            rows, err = f.stop()
            assert mine.pid in rows, (sel, rows.keys(), err)
            assert other.pid not in rows, (sel, "a process the selectors do not take")
            last = rows[mine.pid][-1]
            assert last["state"] == "exited"
            assert abs(last["peak"] // 1024 - vmhwm_kb(out_mine)) <= 64 * PAGE_KB, (
                sel, last, vmhwm_kb(out_mine))
            assert "1 started, 1 exited" in err or ("started" in err), err
    finally:
        os.rmdir(cg)


@needs_kernel
def test_pid_selector_takes_the_tree_and_initial_processes(open_tmp):
    p = subprocess.Popen(["sh", "-c", "sleep 1.2; %s 30 100 >/dev/null; sleep 0.3" % target("alloc")])
    time.sleep(0.2)
    f = Fleet(["--pid", str(p.pid)], str(open_tmp))
    p.wait(timeout=30)
    time.sleep(0.4)
    rows, err = f.stop()
    assert p.pid in rows, rows
    comms = {r[-1]["comm"] for r in rows.values()}
    assert "alloc" in comms and "sleep" in comms, comms
    assert max(r[-1]["peak"] for r in rows.values() if r[-1]["comm"] == "alloc") >= 30 << 20


@needs_kernel
def test_output_folder_one_complete_dat_per_process(open_tmp):
    name = "mpo%s" % uuid.uuid4().hex[:8]
    exe = shutil.copy(target("alloc"), os.path.join(str(open_tmp), name))
    outdir = open_tmp / "out"
    outdir.mkdir()
    f = Fleet(["--name", name, "-o", str(outdir)], str(open_tmp))
    procs = [alloc(20 + 10 * i, 200, exe=exe) for i in range(3)]
    hwm = {}
    for pr in procs:
        out, _ = pr.communicate(timeout=30)
        hwm[pr.pid] = vmhwm_kb(out)
    time.sleep(0.4)
    f.stop()
    files = sorted(os.listdir(str(outdir)))
    assert len(files) == 3, files
    for fn in files:
        pid = int(fn.split("_")[1])
        d = Dat(outdir / fn)
        assert d.cmdline.endswith("%s %d 200" % (name, 20 + 10 * procs.index(
            [p for p in procs if p.pid == pid][0])))
        assert abs(d.peak() * 1024 - hwm[pid]) <= 64 * PAGE_KB, (fn, d.peak(), hwm[pid])
    # mprof plot overlays them
    png = open_tmp / "all.png"
    p = subprocess.run([MPROF, "plot", "-o", str(png)] + [str(outdir / fn) for fn in files],
                       capture_output=True, text=True)
    assert p.returncode == 0 and png.stat().st_size > 1000, p.stderr


@needs_kernel
def test_full_process_table_is_counted_and_reported(open_tmp):
    """More matching processes than the kernel table holds: counted, said at the end."""
    name = "mpm%s" % uuid.uuid4().hex[:8]
    exe = shutil.copy(target("alloc"), os.path.join(str(open_tmp), name))
    f = Fleet(["--name", name, "--max-procs", "2"], str(open_tmp))
    procs = [alloc(5, 800, exe=exe) for _ in range(5)]
    for pr in procs:
        pr.communicate(timeout=30)
    rows, err = f.stop()
    assert len(rows) == 2, rows.keys()
    assert "3 matching processes were not followed" in err, err


@pytest.mark.parametrize("args,msg", [
    ([], "choose processes with"),
    (["--pid", "abc"], "invalid pid"),
    (["--pid", "4000000"], "no process with pid 4000000"),
    (["--name", "x" * 16], "invalid --name"),
    (["--cgroup", "no/such/cgroup-%s" % uuid.uuid4().hex[:6]], "cgroup"),
    (["--user", "no-such-user-%s" % uuid.uuid4().hex[:6]], "no user"),
    (["--all", "--duration", "0"], "invalid duration"),
    (["--all", "--group-by", "host"], "invalid --group-by"),
    (["--all", "--max-procs", "0"], "invalid --max-procs"),
    (["--all", "-o", "/nonexistent-dir"], "no folder"),
    (["--all", "extra"], "unexpected argument"),
])
def test_fleet_bad_input_one_line(tmp_path, args, msg):
    p = subprocess.run([MPROF, "fleet"] + args, capture_output=True, text=True, timeout=30)
    assert p.returncode in (1, 2), p
    assert len(p.stderr.splitlines()) == 1 and msg in p.stderr, p.stderr


def memory_cgroup():
    """A fresh memory cgroup the test may limit: (its folder, the file that sets the limit)."""
    v1 = "/sys/fs/cgroup/memory"
    root = cgroup2_root()
    name = "mprof-oom-%s" % uuid.uuid4().hex[:8]
    if os.path.exists(os.path.join(v1, "memory.limit_in_bytes")):
        return os.path.join(v1, name), "memory.limit_in_bytes"
    if root and "memory" in open(os.path.join(root, "cgroup.controllers")).read():
        return os.path.join(root, name), "memory.max"
    return None, None


@needs_kernel
def test_oom_victim_is_counted(open_tmp):
    """A process the kernel kills for memory (a limited cgroup): counted once, reported."""
    cg, limit = memory_cgroup()
    if not cg:
        pytest.skip("no memory cgroup controller to limit")
    os.mkdir(cg)
    try:
        with open(os.path.join(cg, limit), "w") as fl:
            fl.write(str(48 << 20))
        swap = os.path.join(cg, "memory.memsw.limit_in_bytes")
        if os.path.exists(swap):
            with open(swap, "w") as fl:
                fl.write(str(48 << 20))
        name = "mpk%s" % uuid.uuid4().hex[:8]
        exe = shutil.copy(target("alloc"), os.path.join(str(open_tmp), name))
        f = Fleet(["--name", name], str(open_tmp))
        victim = alloc(200, 100, exe=exe, cgroup_procs=os.path.join(cg, "cgroup.procs"))
        victim.communicate(timeout=60)
        assert victim.returncode == -9, "the kernel's OOM killer did not pick it"
        time.sleep(0.5)
        rows, err = f.stop()
        assert victim.pid in rows and rows[victim.pid][-1]["state"] == "exited"
        assert "1 OOM kills" in err, err
    finally:
        for _ in range(50):
            try:
                os.rmdir(cg)
                break
            except OSError:
                time.sleep(0.1)
