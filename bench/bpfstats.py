"""The kernel's own run time of the BPF programs a process holds (kernel.bpf_stats_enabled=1):
shared by bench_fleet.py, bench_stages.py and bench_lines.py."""
import json
import os
import subprocess


def prog_ids(pid):
    """The ids of the BPF programs process @pid holds (its fds' fdinfo say prog_id)."""
    ids = set()
    try:
        fds = os.listdir("/proc/%d/fdinfo" % pid)
    except OSError:
        return ids
    for fd in fds:
        try:
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                for line in f:
                    if line.startswith("prog_id:"):
                        ids.add(int(line.split()[1]))
        except OSError:
            pass
    return ids


def bpf_run_ns(pid):
    """Run time and count of the BPF programs that process @pid holds: (ns, count, {name:
    (ns, count)})."""
    ids = prog_ids(pid)
    progs = json.loads(subprocess.run(["bpftool", "prog", "show", "-j"], capture_output=True,
                                      text=True, check=True).stdout)
    ns, cnt, per = 0, 0, {}
    for p in progs:
        if p.get("id") not in ids:
            continue
        ns += p.get("run_time_ns", 0)
        cnt += p.get("run_cnt", 0)
        per[p.get("name", "?")] = (p.get("run_time_ns", 0), p.get("run_cnt", 0))
    return ns, cnt, per
