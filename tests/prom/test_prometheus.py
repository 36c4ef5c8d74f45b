"""A real Prometheus server (Debian's) scrapes synth_exporter every second, per process and
with --group-by comm: what Prometheus stored must be exactly what the table handed to the
exporter at each scrape (values, label values including a hostile comm, types and units), a
20 ms spike between two scrapes must be in window_max and never in resident, and a process
that lived between two scrapes must be seen exactly once."""
import time

MIB = 1024 * 1024
JOB, GJOB = "synth", "synth_comm"
SCRAPES = 9  # the spike comes after window 3, the short process after window 5


def label(hexbytes):
    """A label value as the exporter must write it: the bytes, made valid UTF-8 (one U+FFFD
    per maximal ill-formed subpart, as Python's errors="replace")."""
    return bytes.fromhex(hexbytes).decode("utf-8", "replace")


def run_labels(r):
    return {"pid": str(r["pid"]), "comm": label(r["comm"]), "cgroup": label(r["cgroup"]),
            "user": label(r["user"])}


TOTALS = {"mprof_process_starts_total": "starts", "mprof_process_exits_total": "exits",
          "mprof_oom_kills_total": "oom_kills", "mprof_records_lost_total": "records_lost",
          "mprof_dropped_processes_total": "procs_dropped"}


def expected_per_process(entry):
    """{(name, labels): value} of one table read, per process."""
    out = {}
    for r in entry["rows"]:
        lab = frozenset(run_labels(r).items())
        out[("mprof_resident_bytes", lab)] = r["rss"]
        out[("mprof_resident_peak_bytes", lab)] = r["peak"]
        out[("mprof_resident_window_max_bytes", lab)] = r["window_max"]
        out[("mprof_process_start_time_seconds", lab)] = float("%.6f" % r["start_t"])
        out[("mprof_process_oom_kills_total", lab)] = r["oom_kills"]
    for name, key in TOTALS.items():
        out[(name, frozenset())] = entry["totals"][key]
    out[("mprof_tracked_processes", frozenset())] = entry["totals"]["tracked"]
    return out


class CommGroups:
    """The documented semantics of --group-by comm, replayed on the table reads: sums of the
    live, maxima, and a peak and OOM counter that keep what processes that left brought."""

    def __init__(self):
        self.groups = {}  # comm -> {"oom": retired, "peak": retired}
        self.seen = {}    # (pid, start) -> {"g", "base", "oom", "peak"}

    def _retire(self, s):
        g = self.groups[s["g"]]
        g["oom"] += max(s["oom"] - s["base"], 0)
        g["peak"] = max(g["peak"], s["peak"])

    def read(self, entry):
        new = {}
        for r in entry["rows"]:
            key, g = (r["pid"], "%.6f" % r["start_t"]), label(r["comm"])
            self.groups.setdefault(g, {"oom": 0, "peak": 0})
            base = 0
            if key in self.seen:
                s = self.seen[key]
                base = s["base"]
                if s["g"] != g:
                    self._retire(s)
                    base = s["oom"]
            new[key] = {"g": g, "base": base, "oom": r["oom_kills"], "peak": r["peak"],
                        "row": r}
        for key, s in self.seen.items():
            if key not in new:
                self._retire(s)
        self.seen = new
        out = {}
        for g, kept in self.groups.items():
            rows = [s for s in new.values() if s["g"] == g]
            lab = frozenset({("comm", g)})
            live = [s["row"] for s in rows if s["row"]["alive"]]
            out[("mprof_resident_bytes", lab)] = sum(r["rss"] for r in live)
            out[("mprof_resident_peak_bytes", lab)] = max([kept["peak"]] +
                                                          [s["peak"] for s in rows])
            out[("mprof_resident_window_max_bytes", lab)] = max(
                [0] + [s["row"]["window_max"] for s in rows])
            out[("mprof_resident_window_max_sum_bytes", lab)] = sum(
                s["row"]["window_max"] for s in rows)
            out[("mprof_process_oom_kills_total", lab)] = kept["oom"] + sum(
                max(s["oom"] - s["base"], 0) for s in rows)
            out[("mprof_tracked_processes", lab)] = len(live)
        for name, key in TOTALS.items():
            out[(name, frozenset())] = entry["totals"][key]
        return out


def stored(prom, job):
    """{t: {(name, labels): value}} of every raw sample Prometheus holds for @job."""
    by_t = {}
    for key, samples in prom.samples('{job="%s",__name__=~"mprof_.+"}' % job).items():
        lab = dict(key)
        name = lab.pop("__name__")
        assert lab.pop("job") == job
        lab.pop("instance")
        for t, v in samples:
            by_t.setdefault(t, {})[(name, frozenset(lab.items()))] = v
    return by_t


def match_scrapes(prom, job, reads):
    """Pair each successful scrape (its `up` sample) with the table read it caused: the first
    read after the scrape started, within 0.5 s. Returns [(t, entry)]."""
    ups = prom.samples('up{job="%s"}' % job)
    assert len(ups) == 1
    pairs = []
    for t, v in list(ups.values())[0]:
        if v != 1:
            continue
        after = [e for e in reads if -0.05 <= e["t"] - t < 0.5]
        assert after, "no table read for the scrape at %.3f" % t
        pairs.append((t, after[0]))
    return pairs


def test_prometheus_stores_what_was_served(synth, prometheus):
    a = synth("--spike-after", "3", "--short-after", "5")
    b = synth("--group-by", "comm", "--spike-after", "3", "--short-after", "5")
    prom = prometheus({JOB: [a.addr], GJOB: [b.addr]})
    prom.wait_for_scrapes(JOB, SCRAPES)
    prom.wait_for_scrapes(GJOB, SCRAPES)
    sa, sb = a.stop(), b.stop()
    time.sleep(1.5)  # a scrape that was under way is stored or failed by now
    assert sa["errors"] == 0 and sb["errors"] == 0

    for synth_, job, model in ((a, JOB, None), (b, GJOB, CommGroups())):
        log = synth_.entries()
        reads = [e for e in log if "rows" in e]
        assert all(e["closed"] for e in reads)  # Prometheus only GETs
        expect = {}
        for e in reads:
            expect[id(e)] = model.read(e) if model else expected_per_process(e)
        pairs = match_scrapes(prom, job, reads)
        assert len(pairs) >= SCRAPES
        # every read was a scrape Prometheus stored, but perhaps the one cut by the stop
        assert len(pairs) >= len(reads) - 1, (len(pairs), len(reads))
        got = stored(prom, job)
        assert set(got) == {t for t, _ in pairs}
        for t, e in pairs:
            want = {k: float(v) for k, v in expect[id(e)].items()}
            assert got[t] == want, "scrape at %.3f (window %d) differs" % (t, e["window"])

        # the spike: 20 ms, 300 ms after a scrape, so between two scrapes
        spike = [e for e in log if "spike_start" in e]
        assert len(spike) == 1
        s0, s1 = spike[0]["spike_start"], spike[0]["spike_end"]
        assert 0.015 <= s1 - s0 <= 0.2, s1 - s0
        assert not any(s0 - 0.01 <= e["t"] <= s1 + 0.01 for e in reads)
        sel = '{job="%s",comm="spiker"}' % job
        assert prom.value("max_over_time(mprof_resident_bytes%s[1h])" % sel) == 50 * MIB
        assert prom.value("max_over_time(mprof_resident_window_max_bytes%s[1h])" % sel) \
            == 350 * MIB
        wmax = list(prom.samples("mprof_resident_window_max_bytes" + sel).values())[0]
        after = [v for t, v in wmax if t > s1]
        assert after[0] == 350 * MIB and after[1] == 50 * MIB  # one window, then closed
        assert prom.value("max_over_time(mprof_resident_peak_bytes%s[1h])" % sel) == 350 * MIB

    # the short-lived process, per process: one sample, its last value, its OOM kill, and
    # so no increase() of its own series: the run's counter has it
    sel = '{job="%s",pid="2001"}' % JOB
    short = prom.samples("mprof_resident_bytes" + sel)
    assert len(short) == 1
    assert [v for _, v in list(short.values())[0]] == [31 * MIB]
    assert [v for _, v in list(prom.samples("mprof_process_oom_kills_total" + sel)
                               .values())[0]] == [1]
    assert not prom.query("increase(mprof_process_oom_kills_total%s[1h])" % sel)
    assert prom.value('increase(mprof_oom_kills_total{job="%s"}[1h])' % JOB) > 0
    # per group, the kill is counted in its group's counter, which outlives the process and
    # goes from 0 to 1, so increase() sees it
    sel = '{job="%s",comm="python3"}' % GJOB
    assert prom.value("increase(mprof_process_oom_kills_total%s[1h])" % sel) > 0
    assert prom.value("last_over_time(mprof_process_oom_kills_total%s[1h])" % sel) == 1
    assert prom.value("max_over_time(mprof_tracked_processes%s[1h])" % sel) == 2
    assert prom.value('sum(last_over_time(mprof_tracked_processes{job="%s"}[1h]))' % GJOB) \
        == [e for e in b.entries() if "rows" in e][-1]["totals"]["tracked"]
    # the hostile comm arrived intact (as valid UTF-8)
    weird = label("776522697264" "5c" "0a" "09" "01" "ff" "c3" "28")
    assert weird == 'we"ird\\\n\t\x01\ufffd\ufffd('
    assert any(dict(k)["comm"] == weird
               for k in prom.samples('mprof_resident_bytes{job="%s"}' % JOB))

    # types and units as the scrapes declared them (OpenMetrics: # UNIT came through)
    meta = prom.metadata()
    for name in ("mprof_resident_bytes", "mprof_resident_peak_bytes",
                 "mprof_resident_window_max_bytes", "mprof_resident_window_max_sum_bytes"):
        assert meta[name][0]["type"] == "gauge" and meta[name][0]["unit"] == "bytes", name
    assert meta["mprof_process_start_time_seconds"][0]["unit"] == "seconds"
    assert meta["mprof_tracked_processes"][0]["type"] == "gauge"
    for fam in ("mprof_process_oom_kills", "mprof_process_starts", "mprof_process_exits",
                "mprof_oom_kills", "mprof_records_lost", "mprof_dropped_processes"):
        entries = meta.get(fam) or meta.get(fam + "_total")
        assert entries and entries[0]["type"] == "counter", fam
    assert all(meta[n][0]["help"] for n in meta if n.startswith("mprof_"))
