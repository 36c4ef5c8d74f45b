#!/usr/bin/env python3
"""The file commands on a big profile: time and peak RSS of `mprof report`, `mprof peak --json`,
`mprof peak` and `mprof plot` on a generated .dat (1 GiB by default), and the size of the page;
memory_profiler 0.61's `mprof peak` on the same file, and both tools' `mprof plot` on a smaller
one (matplotlib on the big file takes longer than this bench should), side by side.

    python3 bench/bench_report.py [--size-mib 1024] [--rounds 3] [--mprof build/mprof]

The profile is written to a temporary folder (or --dat PATH, kept) and never into the tree. It
looks like a long `mprof run -M` with the hook: MEM samples every 10 ms with our 6 and 4 decimals,
four children (CHLD lines), and nested FUNC lines, calls of 0.2 s to 20 s on three levels, with
a spike of 4 GiB hidden in one sample. Rounds alternate the commands; figures are medians.
"""
import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def generate(path, size):
    """Write about @size bytes of profile to @path; returns (MEM lines, CHLD lines, FUNC lines)."""
    t0, dt = 1795316000.0, 0.01
    n_mem = n_chld = n_func = 0
    with open(path, "w") as f:
        f.write("CMDLINE python3 long_job.py --input big.parquet\n")
        i, written = 0, 0
        while written < size:
            lines = []
            for _ in range(20000):
                t = t0 + i * dt
                m = 200 + 150 * math.sin(i / 50000.0) + (i % 997) / 10.0
                if i == 12345678:
                    m = 4096.5  # one sample: the peak that must survive the reduction
                lines.append("MEM %.6f %.4f\n" % (m, t))
                if i % 2 == 0:
                    k = (i // 2) % 4
                    lines.append("CHLD %d %.6f %.4f\n" % (4000 + k, 20 + 10 * k + (i % 313) / 50.0, t + 0.0003))
                    n_chld += 1
                if i % 2000 == 1999:  # a 20 s call holding ten 2 s calls holding a 0.2 s one
                    s = t - 19.99
                    lines.append("FUNC __main__.step %.4f %.4f %.4f %.4f 0\n" % (m, s, m, t))
                    for j in range(10):
                        a = s + j * 2
                        lines.append("FUNC __main__.chunk %.4f %.4f %.4f %.4f 1\n" % (m, a, m, a + 1.9))
                        lines.append("FUNC __main__.parse %.4f %.4f %.4f %.4f 2\n" % (m, a + 0.1, m, a + 0.3))
                    n_func += 21
                n_mem += 1
                i += 1
            chunk = "".join(lines)
            f.write(chunk)
            written += len(chunk)
    return n_mem, n_chld, n_func


def measure_rss(cmd, cwd):
    """Wall seconds, peak RSS in MiB (the kernel's ru_maxrss of that one process) and stdout."""
    t = time.perf_counter()
    out = tempfile.TemporaryFile()
    p = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read()
    p.stderr.close()
    if p.returncode:
        sys.exit("bench: %s failed: %s" % (" ".join(cmd), err.decode(errors="replace").strip()))
    out.seek(0)
    return wall, ru.ru_maxrss / 1024.0, out.read()


def orig_mprof():
    probe = subprocess.run(["/usr/bin/python3", "-c", "import mprof"], capture_output=True)
    return None if probe.returncode else ["/usr/bin/python3", "-m", "mprof"]


def bench(cmds, rounds, cwd):
    res = {k: {"wall": [], "rss": []} for k in cmds}
    for r in range(rounds):
        names = list(cmds)
        names = names[r % len(names):] + names[:r % len(names)]
        for k in names:
            wall, rss, _ = measure_rss(cmds[k], cwd)
            res[k]["wall"].append(wall)
            res[k]["rss"].append(rss)
    return {k: (statistics.median(v["wall"]), statistics.median(v["rss"])) for k, v in res.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mprof", default=os.path.join(ROOT, "build", "mprof"))
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--small-mib", type=int, default=16, help="the file both plots draw")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dat", help="write (or reuse) the big profile here")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results_report.md"))
    a = ap.parse_args()
    mprof = os.path.abspath(a.mprof)
    tmp = tempfile.mkdtemp(prefix="mprof-bench-report-")
    try:
        big = os.path.abspath(a.dat) if a.dat else os.path.join(tmp, "big.dat")
        if not os.path.exists(big):
            t = time.perf_counter()
            n = generate(big, a.size_mib << 20)
            print("generated %s: %d MiB, %d MEM, %d CHLD, %d FUNC lines in %.0f s"
                  % (big, os.path.getsize(big) >> 20, n[0], n[1], n[2], time.perf_counter() - t))
        small = os.path.join(tmp, "small.dat")
        generate(small, a.small_mib << 20)
        size_mib = os.path.getsize(big) / 2**20
        small_mib = os.path.getsize(small) / 2**20
        orig = orig_mprof()

        # the page, once, to check it and to size it
        html = os.path.join(tmp, "big.html")
        measure_rss([mprof, "report", "-o", html, big], tmp)
        page = open(html, encoding="utf-8").read()
        start = page.index('id="mprof-data">') + len('id="mprof-data">')
        data = json.loads(page[start:page.index("</script", start)])
        prof = data["profiles"][0]
        assert prof["peak"]["mib"] == 4096.5 and max(prof["mem"]["mib"]) == 4096.5
        series_pts = [len(prof["mem"]["t"])] + [len(c["t"]) for c in prof["children"] if "t" in c]

        big_cmds = {
            "mprof report": [mprof, "report", "-o", html, big],
            "mprof peak --json": [mprof, "peak", "--json", big],
            "mprof peak": [mprof, "peak", big],
            "mprof plot": [mprof, "plot", "-o", os.path.join(tmp, "big.png"), big],
        }
        res = bench(big_cmds, a.rounds, tmp)
        orig_peak = None
        if orig:
            orig_peak = bench({"memory_profiler peak": orig + ["peak", big]}, 1, tmp)
        small_cmds = {
            "mprof report": [mprof, "report", "-o", os.path.join(tmp, "small.html"), small],
            "mprof plot": [mprof, "plot", "-o", os.path.join(tmp, "small.png"), small],
        }
        if orig:
            small_cmds["memory_profiler plot"] = orig + ["plot", "-o", os.path.join(tmp, "small_mp.png"), small]
        small_res = bench(small_cmds, a.rounds, tmp)

        lines = ["# mprof report and the file commands on big profiles", "",
                 "`python3 bench/bench_report.py --size-mib %d --rounds %d`: medians of %d alternated rounds."
                 % (a.size_mib, a.rounds, a.rounds), "",
                 "## A %.0f MiB profile (%d MEM, FUNC and CHLD lines as in the docstring)" % (size_mib, prof["mem_samples"]),
                 "", "| command | wall (s) | peak RSS (MiB) |", "|---|---|---|"]
        for k, (w, r) in res.items():
            lines.append("| %s | %.2f | %.0f |" % (k, w, r))
        if orig_peak:
            for k, (w, r) in orig_peak.items():
                lines.append("| %s (0.61, 1 round) | %.2f | %.0f |" % (k, w, r))
        lines += ["", "Page: %.0f KiB; points per curve: %s (bound: 4 x (%d + 1)); calls: %d of %d drawn."
                  % (os.path.getsize(html) / 1024, ", ".join(map(str, series_pts)), data["columns"],
                     prof["calls"]["shown"], prof["calls"]["n"]), "",
                  "## A %.0f MiB profile, both tools' plots" % small_mib, "",
                  "| command | wall (s) | peak RSS (MiB) |", "|---|---|---|"]
        for k, (w, r) in small_res.items():
            lines.append("| %s | %.2f | %.0f |" % (k, w, r))
        text = "\n".join(lines) + "\n"
        print(text)
        with open(a.out, "w") as f:
            f.write(text)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
