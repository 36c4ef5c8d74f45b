"""The live view of the real `mprof fleet` in a tmux pane of 80x24: real processes, keys."""
import importlib.util
import os
import shutil
import subprocess
import uuid

import pytest

from conftest import MPROF, needs_kernel, target

_spec = importlib.util.spec_from_file_location(
    "live_conftest", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                  "live", "conftest.py"))
live = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(live)


@needs_kernel
def test_fleet_live_view_in_tmux_80x24(open_tmp, tmp_path):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (make deps installs it)")
    name = "mpv%s" % uuid.uuid4().hex[:8]
    exe = shutil.copy(target("holder"), os.path.join(str(open_tmp), name))
    procs = [subprocess.Popen([exe, str(mib), "0", "0"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for mib in (30, 90, 60)]
    for p in procs:
        p.stdout.readline()
    t = live.Tmux(tmp_path, 80, 24)
    try:
        t.start([MPROF, "fleet", "--name", name, "-T", "0.3"])
        screen = t.wait(lambda s: sum(str(p.pid) in "\n".join(s) for p in procs) == 3,
                        what="the three processes")
        assert len(screen) <= 24 and all(live.width(line) <= 80 for line in screen)
        rows = [line for line in screen if name[:10] in line]
        pids = [int(line.split()[0]) for line in rows]
        # sorted by RSS: 90, 60, 30 MiB
        assert pids == [procs[1].pid, procs[2].pid, procs[0].pid], screen
        procs[1].stdin.close()  # the biggest exits: it is marked, then kept a while
        procs[1].wait(timeout=30)
        t.wait(lambda s: any(str(procs[1].pid) in line and "exited" in line for line in s),
               what="the exited process marked")
        t.keys("p")  # by peak; exited rows come after the live ones whatever the key
        t.wait(lambda s: "sorted by PEAK" in s[0] and
               [int(line.split()[0]) for line in s if name[:10] in line]
               == [procs[2].pid, procs[0].pid, procs[1].pid], what="sorted by peak")
        t.keys("q")
        t.wait_done()
        assert t.read("rc").strip() == b"0"
        assert t.read("stty.before") == t.read("stty.after"), "the terminal was not restored"
    finally:
        t.kill()
        for p in procs:
            if p.poll() is None:
                p.stdin.close()
                p.wait(timeout=30)
