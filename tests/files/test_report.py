"""mprof report: one self-contained HTML page, checked in a real headless browser (Debian's
chromium) against the MEM, CHLD and FUNC lines of real files: the series drawn, the peak label,
the children in the legend, the function brackets and flame boxes, a screenshot that is not blank;
the data element cannot be broken out of; dense files are reduced within the stated bound. The
LINE and STACK records (--lines) against hand-written files: the line tables (heaviest first, the
source lines read when the page is made) and the icicle of the stacks of growth."""
import html.parser
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.parse

import pytest

from conftest import DATA, ROOT, _env, copy_data
from test_peak_json import highest, lines_of
from test_plot import png_info

REPORT_DIR = os.path.join(ROOT, "mprof", "report")
COLUMNS = 2000  # user/report.h MP_REPORT_COLUMNS
# Everything that keeps chromium off the network, plus a proxy that goes nowhere: a page that
# needed anything from outside would not draw.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
                  "--virtual-time-budget=5000"]


@pytest.fixture(scope="session")
def chromium():
    path = shutil.which("chromium")
    if not path:
        pytest.skip("chromium is not installed (apt-get install chromium; make deps does)")
    return path


def browse(chromium, page, shot=None, size="1280,900"):
    """Load @page (a path) from a file:// URL in a fresh profile; returns the DOM after its
    scripts ran, and writes a screenshot to @shot if given."""
    url = "file://" + os.path.abspath(str(page))
    with tempfile.TemporaryDirectory() as ud:
        base = [chromium] + CHROMIUM_FLAGS + ["--user-data-dir=" + ud, "--window-size=" + size]
        dom = subprocess.run(base + ["--dump-dom", url], capture_output=True, text=True,
                             timeout=120)
        assert dom.returncode == 0, dom.stderr
        if shot:
            p = subprocess.run(base + ["--screenshot=" + str(shot), url], capture_output=True,
                               text=True, timeout=120)
            assert p.returncode == 0 and os.path.exists(str(shot)), p.stderr
    return Dom(dom.stdout)


class Dom(html.parser.HTMLParser):
    """The elements of a DOM dump: each with its tag, attributes, classes and text."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.elems, self.stack = [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        e = {"tag": tag, "attrs": dict(attrs), "text": ""}
        e["class"] = (e["attrs"].get("class") or "").split()
        self.elems.append(e)
        if tag not in ("meta", "input", "br", "img", "link"):
            self.stack.append(e)

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()["tag"] == tag:
                break

    def handle_data(self, data):
        for e in self.stack:
            e["text"] += data

    def by_id(self, ident):
        found = [e for e in self.elems if e["attrs"].get("id") == ident]
        assert len(found) == 1, ident
        return found[0]

    def by_class(self, cls):
        return [e for e in self.elems if cls in e["class"]]


def page_data(path):
    """The JSON the page carries, cut from the HTML as a browser's parser would end it."""
    text = open(str(path), encoding="utf-8").read()
    m = re.search(r'<script type="application/json" id="mprof-data">(.*?)</script', text, re.S)
    assert m, "no data element"
    return json.loads(m.group(1)), m.group(1)


def curve_start(path):
    """Where the page's time 0 is: the first point of the curve (MEM and FUNC points)."""
    _, mem, _, funcs = lines_of(path)
    return min([t for t, _ in mem] + [f[2] for f in funcs] + [f[4] for f in funcs])


def peak_text(path):
    t, m = highest(lines_of(path)[1])
    return "peak %.3f MiB at %.3f s" % (m, t - curve_start(path))


def colours(png):
    w, h, rows = png_info(png)
    return w, h, {px for row in rows for px in row}


def near(cols, rgb, tol=8):
    return any(all(abs(a - b) <= tol for a, b in zip(c, rgb)) for c in cols)


def unesc(field):
    """A text field of a LINE or STACK record, its %XX escapes decoded."""
    return urllib.parse.unquote_to_bytes(field).decode("utf-8", "replace")


def line_records(path):
    """The LINE records (pid, grown, freed, events, line, func, file) and the STACK records
    (pid, grown, freed, events, [(func, file, line), ...]) of a .dat, read here."""
    recs, stacks = [], []
    with open(path, "rb") as f:
        for raw in f:
            w = raw.split()
            if w and w[0] == b"LINE":
                recs.append(tuple(int(x) for x in w[1:6]) + (unesc(w[6]), unesc(w[7])))
            elif w and w[0] == b"STACK":
                frames = [fr.split(b":") for fr in w[5].split(b";")] if len(w) > 5 else []
                stacks.append(tuple(int(x) for x in w[1:5]) +
                              ([(unesc(a), unesc(b), int(c)) for a, b, c in frames],))
    return recs, stacks


def report(ours, *args, cwd):
    a = ours("report", *args, cwd=cwd)
    assert a.rc == 0 and a.err == "", a
    return a


def test_functions_page_in_a_browser(ours, chromium, real_files, tmp_path):
    """memory_profiler's own Python-mode run: nested functions and a timestamp block."""
    shutil.copy(str(real_files / "funcs.dat"), str(tmp_path / "funcs.dat"))
    a = report(ours, "funcs.dat", cwd=tmp_path)
    assert a.out == "funcs.html\n"
    page = tmp_path / "funcs.html"
    dom = browse(chromium, page, shot=tmp_path / "funcs.png")
    st = dom.by_id("status")["attrs"]
    _, mem, kids, funcs = lines_of(str(tmp_path / "funcs.dat"))
    assert st["data-ready"] == "1"
    assert int(st["data-series"]) == 1 and not kids
    assert dom.by_id("peak-label-0")["text"] == peak_text(str(tmp_path / "funcs.dat"))
    # every call drawn: '[' at entry and ']' at exit, one flame box, rows as plot -f counts them
    assert int(st["data-brackets"]) == 2 * len(funcs)
    assert int(st["data-flame-boxes"]) == len(funcs)
    assert int(st["data-flame-rows"]) == max(f[5] for f in funcs) + 1
    table = dom.by_id("func-table")["text"]
    for name in {f[0] for f in funcs}:
        assert name in table
    assert dom.by_id("title")["text"] == lines_of(str(tmp_path / "funcs.dat"))[0].decode()

    w, h, cols = colours(str(tmp_path / "funcs.png"))
    assert (w, h) == (1280, 900)
    assert len(cols) > 100, "a blank or nearly blank page"
    assert near(cols, (0x1f, 0x4f, 0x9c)), "the curve's colour is not on the screenshot"
    assert near(cols, (0xd6, 0x26, 0x29)), "the peak's colour is not on the screenshot"
    # no LINE or STACK record: the line attribution section stays hidden
    assert st["data-line-procs"] == "0" and st["data-icicle-boxes"] == "0"
    assert "hidden" in dom.by_id("lines")["attrs"] and not dom.by_class("fg-box")


def test_children_page_in_a_browser(ours, chromium, real_files, tmp_path):
    """memory_profiler's -M -C run of a multiprocessing pool: one curve per child, in the legend."""
    shutil.copy(str(real_files / "children.dat"), str(tmp_path / "children.dat"))
    report(ours, "children.dat", cwd=tmp_path)
    dom = browse(chromium, tmp_path / "children.html")
    st = dom.by_id("status")["attrs"]
    _, _, kids, _ = lines_of(str(tmp_path / "children.dat"))
    assert kids
    assert int(st["data-series"]) == 1 + len(kids)
    legend = [e["text"].strip() for e in dom.by_class("u-label")]
    assert legend[0] == "memory used (main process)"
    for pid, samples in kids.items():
        want = "child %d, peak %.3f MiB" % (pid, highest(samples)[1])
        assert want in legend, (want, legend)
    assert dom.by_id("peak-label-0")["text"] == peak_text(str(tmp_path / "children.dat"))
    assert int(st["data-brackets"]) == 0 and int(st["data-flame-rows"]) == 0


def test_overlay_in_a_browser(ours, chromium, real_files, tmp_path):
    names = ["funcs.dat", "children.dat", "plain.dat"]
    for n in names:
        shutil.copy(str(real_files / n), str(tmp_path / n))
    a = report(ours, *names, cwd=tmp_path)
    assert a.out == "funcs_overlay.html\n"
    dom = browse(chromium, tmp_path / "funcs_overlay.html")
    st = dom.by_id("status")["attrs"]
    n_kids = sum(len(lines_of(str(tmp_path / n))[2]) for n in names)
    assert int(st["data-profiles"]) == 3 and int(st["data-series"]) == 3 + n_kids
    for i, n in enumerate(names):
        assert dom.by_id("peak-label-%d" % i)["text"] == "%s (%s)" % (peak_text(str(tmp_path / n)), n)
    # as plot: function timestamps only for a single profile
    assert int(st["data-brackets"]) == 0
    assert dom.by_id("title")["text"] == "3 profiles"


def test_stored_files(ours, tmp_path):
    """Every stored file (tabs, CRLF, levelless FUNC lines, our own records) makes a page whose
    data are the file's: the peak, the children, the calls with plot's levels."""
    names = sorted(n for n in os.listdir(DATA) if n.endswith(".dat"))
    copy_data(tmp_path, *names)
    for n in names:
        report(ours, "-o", n + ".html", n, cwd=tmp_path)
        data, _ = page_data(tmp_path / (n + ".html"))
        [p] = data["profiles"]
        cmdline, mem, kids, funcs = lines_of(str(tmp_path / n))
        t, m = highest(mem)
        assert p["peak"]["mib"] == m and p["peak"]["time"] == t
        assert p["start"] == curve_start(str(tmp_path / n))
        assert p["mem_samples"] == len(mem) and p["mem"]["n"] == len(mem) + 2 * len(funcs)
        assert sorted(c["pid"] for c in p["children"]) == sorted(kids)
        assert [c["peak"]["mib"] for c in p["children"]] == \
            sorted((highest(s)[1] for s in kids.values()), reverse=True)
        assert p["calls"]["n"] == p["calls"]["shown"] == len(funcs)
        assert max(p["mem"]["mib"]) == m or funcs  # FUNC values can top the MEM ones
        recs, stacks = line_records(str(tmp_path / n))
        assert ("lines" in p) == bool(recs) and ("stacks" in p) == bool(stacks)
        if recs:  # every record in one row, the sums kept, per process
            for pid in {r[0] for r in recs}:
                [proc] = [x for x in p["lines"] if x["pid"] == pid]
                mine = [r for r in recs if r[0] == pid]
                assert proc["grown"] == sum(r[1] for r in mine)
                assert proc["freed"] == sum(r[2] for r in mine)
                assert sum(len(g["rows"]) for g in proc["groups"]) == \
                    len({(r[4], r[5], r[6]) for r in mine})
        if stacks:
            assert sum(x["n"] for x in p["stacks"]) == len(stacks)
            for x in p["stacks"]:
                got = [([tuple(x["frames"][i]) for i in ids], g, f, e) for ids, g, f, e in x["stacks"]]
                assert got == [(fr, g, f, e) for pid, g, f, e, fr in stacks if pid == x["pid"]]
    # the file without levels gets the ones its nesting gives, as the leveled original has
    old, _ = page_data(tmp_path / "old_crlf_nolevel.dat.html")
    new, _ = page_data(tmp_path / "mp_timestamps.dat.html")
    assert old["profiles"][0]["calls"]["level"] == new["profiles"][0]["calls"]["level"]


HOSTILE = (b"</script><script>document.title='pwned';window.PWNED=1</script><!-- <script> "
           b"\"q\" \\ \x01\x1b[31m \xff\xfe \xc3\xa9t\xc3\xa9 \xe2\x80\xa8 & </SCRIPT >")


def test_hostile_cmdline_stays_in_its_element(ours, chromium, tmp_path):
    with open(str(tmp_path / "evil.dat"), "wb") as f:
        # 30.0625 is an exact tie at 3 decimals: the page rounds it as C's %.3f does (to even)
        f.write(b"CMDLINE " + HOSTILE + b"\nMEM 10 1795316000\nMEM 30.0625 1795316001\n"
                b"FUNC </script>.x 10 1795316000 30 1795316001 0\n")
    report(ours, "evil.dat", cwd=tmp_path)
    data, raw = page_data(tmp_path / "evil.html")
    assert "<" not in raw and ">" not in raw
    want = HOSTILE.decode("utf-8", "replace")
    assert data["profiles"][0]["cmdline"] == want
    assert data["profiles"][0]["funcs"][0]["name"] == "</script>.x"
    dom = browse(chromium, tmp_path / "evil.html")
    assert dom.by_id("status")["attrs"]["data-ready"] == "1"  # our script ran, on our data
    assert dom.by_id("title")["text"] == want
    assert dom.by_id("peak-label-0")["text"] == "peak %.3f MiB at 1.000 s" % 30.0625 == \
        "peak 30.062 MiB at 1.000 s"
    assert len([e for e in dom.elems if e["tag"] == "script"]) == 3
    assert "pwned" != [e for e in dom.elems if e["tag"] == "title"][0]["text"]


def test_page_needs_no_network(ours, tmp_path):
    copy_data(tmp_path, "mp_nested.dat")
    report(ours, "mp_nested.dat", cwd=tmp_path)
    text = (tmp_path / "mp_nested.html").read_text()
    assert not re.search(r"<script[^>]*\ssrc=|<link\b|<img\b|<iframe\b|@import|url\(", text, re.I)
    assert "uPlot 1.6.32" in text and "The MIT License" in text  # the library and its licence


def test_dense_file_is_reduced_and_keeps_its_extremes(ours, chromium, tmp_path):
    n, t0 = 300000, 1795316000.0
    with open(str(tmp_path / "dense.dat"), "w") as f:
        f.write("CMDLINE dense\n")
        for i in range(n):
            m = 100 + (i % 1000) / 100.0
            if i == 123457:
                m = 777.25  # one sample spike: the peak
            if i == 234567:
                m = 0.5  # one sample dip
            f.write("MEM %.6f %.4f\n" % (m, t0 + i * 0.001))
            if i % 4 == 0:
                c = 999.5 if i == 200000 else m / 2  # the child's own one-sample peak
                f.write("CHLD 42 %.6f %.4f\n" % (c, t0 + i * 0.001 + 0.0002))
    report(ours, "dense.dat", cwd=tmp_path)
    size = (tmp_path / "dense.html").stat().st_size
    assert size < 600 * 1024, size
    data, _ = page_data(tmp_path / "dense.html")
    p = data["profiles"][0]
    assert data["columns"] == COLUMNS
    for curve in (p["mem"], p["children"][0]):
        assert len(curve["t"]) == len(curve["mib"]) <= 4 * (COLUMNS + 1)
        assert curve["t"] == sorted(curve["t"])
    assert p["mem"]["n"] == n
    assert max(p["mem"]["mib"]) == 777.25 and min(p["mem"]["mib"]) == 0.5
    assert max(p["children"][0]["mib"]) == 999.5
    assert p["peak"]["mib"] == 777.25 and abs(p["peak"]["t"] - 123.457) < 1e-6
    dom = browse(chromium, tmp_path / "dense.html")
    assert dom.by_id("peak-label-0")["text"] == "peak 777.250 MiB at 123.457 s"
    assert int(dom.by_id("status")["attrs"]["data-series"]) == 2


def test_title_option(ours, tmp_path):
    copy_data(tmp_path, "mp_plain.dat")
    report(ours, "-t", "my <run> & co", "-o", "t.html", "mp_plain.dat", cwd=tmp_path)
    data, raw = page_data(tmp_path / "t.html")
    assert data["title"] == "my <run> & co" and "<run>" not in raw


def one_error_line(res):
    assert res.rc == 1, res
    lines = res.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mprof: error: "), res
    return lines[0]


def test_errors(ours, tmp_path):
    assert "no mprofile_*.dat" in one_error_line(ours("report", cwd=tmp_path))
    assert "missing.dat" in one_error_line(ours("report", "missing.dat", cwd=tmp_path))
    (tmp_path / "bad.dat").write_bytes(b"MEM 1 2\nMEM x y\n")
    assert "'bad.dat' line 2" in one_error_line(ours("report", "bad.dat", cwd=tmp_path))
    (tmp_path / "empty.dat").write_bytes(b"")
    assert "empty" in one_error_line(ours("report", "empty.dat", cwd=tmp_path))
    copy_data(tmp_path, "mp_plain.dat")
    msg = one_error_line(ours("report", "-o", "no/such/dir/x.html", "mp_plain.dat", cwd=tmp_path))
    assert "cannot write 'no/such/dir/x.html'" in msg
    msg = one_error_line(ours("report", "-o", "mp_plain.dat/x.html", "mp_plain.dat", cwd=tmp_path))
    assert "not a directory" in msg.lower()
    assert "unknown option" in one_error_line(ours("report", "--bogus", cwd=tmp_path))
    assert "needs a value" in one_error_line(ours("report", "mp_plain.dat", "-o", cwd=tmp_path))
    # nothing half-written was left behind
    assert sorted(os.listdir(str(tmp_path))) == ["bad.dat", "empty.dat", "mp_plain.dat"]


def test_newest_profile_by_default(ours, tmp_path):
    copy_data(tmp_path, "mp_plain.dat")
    os.rename(str(tmp_path / "mp_plain.dat"), str(tmp_path / "mprofile_20240102030405.dat"))
    a = report(ours, cwd=tmp_path)
    assert a.out == "Using last profile data.\nmprofile_20240102030405.html\n"
    assert page_data(tmp_path / "mprofile_20240102030405.html")[0]["profiles"][0]["file"] == \
        "mprofile_20240102030405.dat"


def test_library_is_pinned_without_addresses():
    pkg = json.load(open(os.path.join(REPORT_DIR, "package.json")))
    for name, ver in pkg["dependencies"].items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", ver), (name, ver)  # an exact version
    lock = open(os.path.join(REPORT_DIR, "package-lock.json")).read()
    assert "://" not in lock and '"resolved"' not in lock
    assert json.loads(lock)["packages"]["node_modules/uplot"]["version"] == \
        pkg["dependencies"]["uplot"]
    npmrc = open(os.path.join(REPORT_DIR, ".npmrc")).read().split()
    assert "omit-lockfile-registry-resolved=true" in npmrc


class Browser:
    """Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe: commands
    on its fd 3, answers on its fd 4), with real input events: no driver, no port."""

    def __init__(self, chromium, url, size=(1280, 900)):
        import fcntl
        self.ud = tempfile.mkdtemp()
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        # park the child's ends above 10 so that placing them on 3 and 4 clobbers nothing
        hi_r, hi_w = fcntl.fcntl(to_r, fcntl.F_DUPFD, 10), fcntl.fcntl(from_w, fcntl.F_DUPFD, 10)

        def child():
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)

        args = [chromium] + CHROMIUM_FLAGS[:-1] + [
            "--user-data-dir=" + self.ud, "--window-size=%d,%d" % size,
            "--remote-debugging-pipe", "about:blank"]
        # close_fds would close 3 and 4 again after child(); Python's own fds are close-on-exec
        self.proc = subprocess.Popen(args, close_fds=False, preexec_fn=child,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for fd in (to_r, from_w, hi_r, hi_w):
            os.close(fd)
        self.w, self.r = os.fdopen(to_w, "wb"), os.fdopen(from_r, "rb")
        self.next_id, self.buf, self.session = 0, b"", None
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=size[0], height=size[1],
                  deviceScaleFactor=1, mobile=False)
        self.call("Page.navigate", url=url)
        self.wait_for("!!document.getElementById('status') && "
                      "document.getElementById('status').dataset.ready === '1'")

    def call(self, method, **params):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if self.session:
            msg["sessionId"] = self.session
        self.w.write(json.dumps(msg).encode() + b"\0")
        self.w.flush()
        while True:
            while b"\0" not in self.buf:
                chunk = os.read(self.r.fileno(), 65536)
                assert chunk, "chromium closed the pipe"
                self.buf += chunk
            raw, self.buf = self.buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self.next_id:
                assert "error" not in reply, reply
                return reply["result"]

    def js(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        assert "exceptionDetails" not in r, r
        return r["result"].get("value")

    def wait_for(self, expr, tries=600):  # 30 s: the machine may be busy
        import time
        for _ in range(tries):
            if self.js(expr):
                return
            time.sleep(0.05)
        raise AssertionError("page never got to: " + expr)

    def mouse(self, kind, x, y, **kw):
        self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, **kw)

    def status(self):
        return self.js("Object.assign({}, document.getElementById('status').dataset)")

    def close(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.ud, ignore_errors=True)


def test_zoom_pan_hover_and_legend(ours, chromium, real_files, tmp_path):
    """Real mouse events on memory_profiler's -M run: hover values, wheel zoom, drag zoom,
    shift+drag pan, double-click back to all, a child hidden and shown from the legend."""
    shutil.copy(str(real_files / "children.dat"), str(tmp_path / "children.dat"))
    report(ours, "children.dat", cwd=tmp_path)
    data, _ = page_data(tmp_path / "children.html")
    mem = data["profiles"][0]["mem"]
    b = Browser(chromium, "file://" + str(tmp_path / "children.html"))
    try:
        box = b.js("(function(){var r=document.querySelector('#chart .u-over').getBoundingClientRect();"
                   "return [r.left, r.top, r.width, r.height];})()")
        left, top, width, height = box
        st = b.status()
        x0, x1 = float(st["xMin"]), float(st["xMax"])
        assert x0 < mem["t"][0] and x1 > mem["t"][-1]  # all of it, with a margin

        # hover: the curve's nearest sample, as the data have it
        px = left + width * 0.4
        b.mouse("mouseMoved", px, top + height / 2)
        b.wait_for("!document.getElementById('tip').hidden")
        tip = b.js("document.getElementById('tip').textContent")
        t = x0 + (px - left) / width * (x1 - x0)
        k = min(range(len(mem["t"])), key=lambda i: abs(mem["t"][i] - t))
        want = "%.3f MiB at %.3f s" % (mem["mib"][k], mem["t"][k])
        assert want in tip, (want, tip)
        assert abs(float(tip.split(" s")[0]) - t) < 2 * (x1 - x0) / width  # the cursor's time

        # wheel up: zoom in around the cursor
        b.mouse("mouseWheel", px, top + height / 2, deltaX=0, deltaY=-100)
        b.wait_for("document.getElementById('status').dataset.xMax - document.getElementById('status').dataset.xMin < %r"
                   % ((x1 - x0) * 0.9))
        st = b.status()
        z0, z1 = float(st["xMin"]), float(st["xMax"])
        assert abs((z1 - z0) - (x1 - x0) * 0.8) < 1e-6 * (x1 - x0)
        assert z0 < t < z1

        # shift+drag: the same width, moved
        b.mouse("mousePressed", left + width * 0.6, top + height / 2, button="left", clickCount=1, modifiers=8)
        b.mouse("mouseMoved", left + width * 0.4, top + height / 2, button="left", modifiers=8)
        b.mouse("mouseReleased", left + width * 0.4, top + height / 2, button="left", clickCount=1, modifiers=8)
        st = b.status()
        p0, p1 = float(st["xMin"]), float(st["xMax"])
        assert abs((p1 - p0) - (z1 - z0)) < 1e-9 * (x1 - x0) and p0 > z0

        # drag: zoom to the selection
        b.mouse("mousePressed", left + width * 0.25, top + height / 2, button="left", clickCount=1)
        b.mouse("mouseMoved", left + width * 0.5, top + height / 2, button="left")
        b.mouse("mouseReleased", left + width * 0.5, top + height / 2, button="left", clickCount=1)
        st = b.status()
        s0, s1 = float(st["xMin"]), float(st["xMax"])
        assert abs(s0 - (p0 + 0.25 * (p1 - p0))) < 2 * (p1 - p0) / width
        assert abs(s1 - (p0 + 0.5 * (p1 - p0))) < 2 * (p1 - p0) / width

        # double-click: everything again
        for kind, count in (("mousePressed", 1), ("mouseReleased", 1), ("mousePressed", 2),
                            ("mouseReleased", 2)):
            b.mouse(kind, left + width / 2, top + height / 2, button="left", clickCount=count)
        b.wait_for("Math.abs(document.getElementById('status').dataset.xMin - %r) < 1e-9" % x0)
        assert float(b.status()["xMax"]) == pytest.approx(x1)

        # the legend: a child's entry hides its curve, a second click shows it again
        shown = int(b.status()["shown"])
        pos = b.js("(function(){var e=[].slice.call(document.querySelectorAll('.u-legend .u-series'))"
                   ".filter(function(r){return /^child /.test(r.textContent.trim());})[0];"
                   "var r=e.getBoundingClientRect();return [r.left+r.width/2, r.top+r.height/2];})()")
        for n in (shown - 1, shown):
            b.mouse("mousePressed", pos[0], pos[1], button="left", clickCount=1)
            b.mouse("mouseReleased", pos[0], pos[1], button="left", clickCount=1)
            b.wait_for("document.getElementById('status').dataset.shown === '%d'" % n)
    finally:
        b.close()


def test_flame_band_follows_and_names_calls(ours, chromium, real_files, tmp_path):
    shutil.copy(str(real_files / "funcs.dat"), str(tmp_path / "funcs.dat"))
    report(ours, "funcs.dat", cwd=tmp_path)
    data, _ = page_data(tmp_path / "funcs.html")
    p = data["profiles"][0]
    calls = p["calls"]
    top = max(range(calls["shown"]), key=lambda i: calls["t1"][i] - calls["t0"][i])
    b = Browser(chromium, "file://" + str(tmp_path / "funcs.html"))
    try:
        def rect(sel):
            return b.js("(function(){var r=document.querySelector('%s').getBoundingClientRect();"
                        "return [r.left, r.top, r.width, r.height];})()" % sel)
        left, ftop, width, fheight = rect("#flame .u-over")
        mleft, _, mwidth, _ = rect("#chart .u-over")
        assert (left, width) == (mleft, mwidth)  # one time axis for both
        st = b.status()
        x0, x1 = float(st["xMin"]), float(st["xMax"])
        # hover the middle of the longest call, in its row (level 0 is the bottom row)
        rows = int(st["flameRows"])
        t = (calls["t0"][top] + calls["t1"][top]) / 2
        y = ftop + fheight - (calls["level"][top] + 0.5) * fheight / rows
        b.mouse("mouseMoved", left + (t - x0) / (x1 - x0) * width, y)
        b.wait_for("!document.getElementById('tip').hidden")
        tip = b.js("document.getElementById('tip').textContent")
        assert tip.startswith(p["funcs"][calls["func"][top]]["name"]), tip
        assert "call depth %d" % calls["level"][top] in tip
        # zooming the curve zooms the band
        _, mtop, _, mheight = rect("#chart .u-over")
        b.mouse("mouseWheel", left + width / 3, mtop + mheight / 2, deltaX=0, deltaY=-100)
        b.wait_for("document.getElementById('status').dataset.xMin != %r" % st["xMin"])
        st = b.status()
        assert (st["flameXMin"], st["flameXMax"]) == (st["xMin"], st["xMax"])
    finally:
        b.close()


def test_points_at_one_instant_are_all_drawn(ours, chromium, tmp_path):
    """Several points of a curve at one time (a turning point and a tick, a FUNC entry and a
    sample) each keep their place on the shared time axis, beside another curve."""
    (tmp_path / "same.dat").write_text("MEM 5 100\nMEM 300 100\nMEM 6 101\nCHLD 3 1 100\n"
                                       "CHLD 3 2 100.5\n")
    report(ours, "same.dat", cwd=tmp_path)
    data, _ = page_data(tmp_path / "same.html")
    assert data["profiles"][0]["mem"]["mib"] == [5, 300, 6]
    st = browse(chromium, tmp_path / "same.html").by_id("status")["attrs"]
    # t=0: two MEM points and one CHLD point share two slots; t=0.5 and t=1: one each
    assert int(st["data-points"]) == 4 and int(st["data-series"]) == 2


MiB = 1 << 20
APP = """import os

def build():
    data = [0] * 1000000
    return data

def main():
    a = build()
    b = bytearray(50 << 20)
    return a, b

main()
"""


def esc(text):
    """%XX escapes as our writer (user/dat.c) writes them."""
    return "".join("%%%02X" % ord(c) if ord(c) <= 0x20 or c in "\x7f%:;" else c for c in text)


def td_rows(dom, table_id=None):
    """The rows of the line tables (cell texts), in document order, with their tr attributes."""
    rows, cur = [], None
    for e in dom.elems:
        if e["tag"] == "tr":
            cur = (e["attrs"], [])
            rows.append(cur)
        elif e["tag"] == "td" and cur is not None:
            cur[1].append(e["text"])
    return [r for r in rows if r[1]]


def pct(box, prop):
    """The percentage @prop ("left", "width") of an icicle box, from its style attribute."""
    return float(re.search(r"(?:^|;)\s*%s: ([0-9.e+-]+)%%" % prop, box["style"]).group(1))


def lines_file(tmp_path):
    """A run's folder with a .dat of two processes' LINE and STACK records (one hostile
    function name, a special row, a relative file, an unreadable one, a file that is not Python),
    and the sources they name."""
    run = tmp_path / "my run"
    run.mkdir()
    app = str(run / "app.py")
    with open(app, "w") as f:
        f.write(APP)
    (run / "mod.py").write_text("def helper():\n    return {}.fromkeys(range(9999))\n")
    hostile = "</script><img>"
    recs = [  # pid, grown, freed, events, line, func, file
        (300, 8 * MiB, 0, 3, 4, "build", app),
        (300, 50 * MiB, 2 * MiB, 5, 9, "main", app),
        (300, 1 * MiB, 0, 2, 8, "main", app),
        (300, 3 * MiB, 0, 7, 0, "<no Python frame>", "-"),
        (300, 12288, 0, 1, 2, "helper", "mod.py"),  # relative: from the .dat's folder
        (300, 4096, 0, 1, 7, "gone", "/nonexistent/gone.py"),
        (300, 4096, 0, 1, 1, "notpy", "/etc/hostname"),  # readable, but not a Python source
        (300, 8192, 4096, 2, 0, "<outside the process>", "-"),
        (301, 2 * MiB, 0, 1, 4, "build", app),
        (301, 65536, 0, 1, 5, hostile, app),
    ]
    stacks = [  # pid, grown, freed, events, frames root first
        (300, 8 * MiB, 0, 3, [("<module>", app, 12), ("main", app, 8), ("build", app, 4)]),
        (300, 50 * MiB, 2 * MiB, 5, [("<module>", app, 12), ("main", app, 9)]),
        (300, 1 * MiB, 0, 2, [("<module>", app, 12), ("main", app, 8)]),
        (300, 3 * MiB, 0, 7, [("<no Python frame>", "-", 0)]),
        (300, 0, 4096, 1, [("<module>", app, 12), ("main", app, 11)]),  # freed only: no box
        (301, 2 * MiB, 0, 1, [("build", app, 4)]),
        (301, 65536, 0, 1, [(hostile, app, 5)]),
    ]
    with open(str(run / "l.dat"), "w") as f:
        f.write("CMDLINE python3 app.py\n")
        for i in range(10):
            f.write("MEM %.6f %.4f\n" % (10 + i * 8, 1795316000 + i * 0.1))
        for pid, g, fr, e, line, func, file in recs:
            f.write("LINE %d %d %d %d %d %s %s\n" % (pid, g, fr, e, line, esc(func), esc(file)))
        for pid, g, fr, e, frames in stacks:
            f.write("STACK %d %d %d %d %s\n" % (pid, g, fr, e, ";".join(
                "%s:%s:%d" % (esc(a), esc(b), c) for a, b, c in frames)))
    return run, app, recs, stacks


def test_lines_page_in_a_browser(ours, chromium, tmp_path):
    run, app, recs, stacks = lines_file(tmp_path)
    a = report(ours, "my run/l.dat", cwd=tmp_path)
    assert a.out == "my run/l.html\n"
    page = run / "l.html"
    data, raw = page_data(page)
    assert "<" not in raw and ">" not in raw  # the hostile name stays in its element
    p = data["profiles"][0]
    src = APP.splitlines()

    # the data: processes, groups and rows heaviest first, the source lines read now
    assert [x["pid"] for x in p["lines"]] == [300, 301]
    p300 = p["lines"][0]
    assert (p300["grown"], p300["freed"], p300["events"]) == \
        (sum(r[1] for r in recs if r[0] == 300), sum(r[2] for r in recs if r[0] == 300),
         sum(r[3] for r in recs if r[0] == 300))
    assert [(g["func"], g["file"]) for g in p300["groups"]] == [
        ("main", app), ("build", app), (None, "-"), ("helper", "mod.py"),
        ("gone", "/nonexistent/gone.py"), ("notpy", "/etc/hostname")]
    main = p300["groups"][0]
    assert [(r["line"], r["grown"], r["freed"], r["events"], r["text"]) for r in main["rows"]] == [
        (9, 50 * MiB, 2 * MiB, 5, src[8]), (8, MiB, 0, 2, src[7])]
    assert (main["grown"], main["freed"], main["events"]) == (51 * MiB, 2 * MiB, 7)
    special = p300["groups"][2]
    assert special["special"] and [(r["name"], r["grown"]) for r in special["rows"]] == [
        ("<no Python frame>", 3 * MiB), ("<outside the process>", 8192)]
    assert p300["groups"][3]["rows"][0]["text"] == "    return {}.fromkeys(range(9999))"
    assert p300["groups"][4]["rows"][0]["text"] is None  # not there
    assert p300["groups"][5]["rows"][0]["text"] is None  # not a .py file: never read
    assert [g["func"] for g in p["lines"][1]["groups"]] == ["build", "</script><img>"]
    assert [x["pid"] for x in p["stacks"]] == [300, 301] and p["stacks"][0]["n"] == 5

    # the page: the rows in the tables as the data order them, formatted as MiB
    dom = browse(chromium, page, shot=tmp_path / "lines.png", size="1280,2600")
    st = dom.by_id("status")["attrs"]
    assert st["data-ready"] == "1"
    assert st["data-line-procs"] == "2" and int(st["data-line-rows"]) == len(recs)
    assert "hidden" not in dom.by_id("lines")["attrs"]
    rows = td_rows(dom)
    line_rows = [r for r in rows if "line-row" in r[0].get("class", "")]
    want = [(r["line"], r["grown"]) for x in p["lines"] for g in x["groups"] for r in g["rows"]]
    assert [(int(r[0]["data-line"]), int(r[0]["data-grown"])) for r in line_rows] == want
    cells = [r[1] for r in line_rows]
    assert cells[0] == ["9", "48.000", "50.000", "2.000", "5", src[8]]
    assert cells[1] == ["8", "1.000", "1.000", "0.000", "2", src[7]]
    assert cells[2] == ["4", "8.000", "8.000", "0.000", "3", src[3]]
    assert cells[3] == ["", "3.000", "3.000", "0.000", "7", "<no Python frame>"]
    assert cells[4] == ["", "0.004", "0.008", "0.004", "2", "<outside the process>"]
    assert cells[6] == ["7", "0.004", "0.004", "0.000", "1", ""]  # unreadable: empty
    totals = [r[1] for r in rows if "total" in r[0].get("class", "").split()]
    assert totals[0] == ["total", "49.000", "51.000", "2.000", "7", ""]
    assert len(totals) == sum(len(x["groups"]) for x in p["lines"])
    heads = [e["text"] for e in dom.elems if e["tag"] == "h3"]
    assert heads[0].startswith("main \u2014 " + app) and "Not on a Python line" in heads[2]
    assert any(h.startswith("</script><img> \u2014 ") for h in heads)

    # the icicle: one box per frame of the stacks that grew, widths their share
    boxes = [e for e in dom.by_class("fg-box")]
    assert int(st["data-icicle-boxes"]) == len(boxes) and st["data-icicle-hidden"] == "0"
    ice = [e for e in dom.elems if e["attrs"].get("id") == "icicle-0-300"]
    assert len(ice) == 1
    mine = [b for b in boxes if b["attrs"]["data-depth"] is not None]

    def box(name, line=None, pid_box=None):
        found = [b["attrs"] for b in mine if b["attrs"]["data-name"] == name and
                 (line is None or b["attrs"].get("data-line") == str(line))]
        return found

    roots = box("all")
    grew300 = sum(s[1] for s in stacks if s[0] == 300 and s[1] > 0)
    assert [int(r["data-grown"]) for r in roots] == [grew300, sum(s[1] for s in stacks if s[0] == 301)]
    [mod] = box("<module>")
    assert int(mod["data-grown"]) == 59 * MiB and mod["data-depth"] == "1"
    assert pct(mod, "left") == 0 and abs(pct(mod, "width") - 100 * 59 / 62) < 1e-3
    [m8] = box("main", 8)
    assert int(m8["data-grown"]) == 9 * MiB and m8["data-depth"] == "2"
    [b4] = [b for b in box("build", 4) if b["data-depth"] == "3"]
    assert int(b4["data-grown"]) == 8 * MiB
    assert not box("main", 11)  # a stack that only freed has no width
    [nf] = box("<no Python frame>")
    assert nf["data-depth"] == "1" and int(nf["data-grown"]) == 3 * MiB
    assert box("</script><img>", 5)
    assert len(mine) == 2 + 5 + 2  # the roots, 300's four frames and its special one, 301's two

    # the screenshot shows the boxes in their colours
    w, h, cols = colours(str(tmp_path / "lines.png"))
    assert (w, h) == (1280, 2600) and len(cols) > 100
    rgb = re.search(r"background(?:-color)?: rgb\((\d+), (\d+), (\d+)\)", m8["style"])
    assert rgb, m8["style"]
    assert near(cols, tuple(int(x) for x in rgb.groups()), tol=3), "an icicle box is not on the screenshot"


def test_icicle_zooms_on_click(ours, chromium, tmp_path):
    run, app, _, _ = lines_file(tmp_path)
    report(ours, "my run/l.dat", cwd=tmp_path)
    b = Browser(chromium, "file://" + str(run / "l.html"), size=(1280, 2600))
    try:
        sel = "#icicle-0-300 .fg-box[data-name=\"main\"][data-line=\"8\"]"

        def click(selector):
            pos = b.js("(function(){var r=document.querySelector('%s').getBoundingClientRect();"
                       "window.scrollTo(0, r.top + window.scrollY - 200);"
                       "r=document.querySelector('%s').getBoundingClientRect();"
                       "return [r.left + r.width / 2, r.top + r.height / 2];})()"
                       % (selector.replace("'", "\\'"), selector.replace("'", "\\'")))
            b.mouse("mousePressed", pos[0], pos[1], button="left", clickCount=1)
            b.mouse("mouseReleased", pos[0], pos[1], button="left", clickCount=1)

        def width(selector):
            return b.js("document.querySelector('%s').style.width" % selector.replace("'", "\\'"))

        assert width(sel) != "100%"
        click(sel)
        b.wait_for("document.querySelector('%s').style.width === '100%%'" % sel.replace("'", "\\'"))
        # its child now has the width of its share of main:8 (8 of 9 MiB)
        child = "#icicle-0-300 .fg-box[data-name=\"build\"][data-line=\"4\"]"
        assert abs(float(width(child).rstrip("%")) - 100 * 8 / 9) < 1e-3  # 6 digits, as CSS has it
        # the box of <module> above it is the zoomed path: full width too; the sibling is gone
        assert width("#icicle-0-300 .fg-box[data-name=\"<module>\"]") == "100%"
        assert not b.js("!!document.querySelector('#icicle-0-300 .fg-box[data-name=\"main\"][data-line=\"9\"]')")
        # a second click zooms out to its parent
        click(sel)
        b.wait_for("!!document.querySelector('#icicle-0-300 .fg-box[data-name=\"main\"][data-line=\"9\"]')")
        assert width("#icicle-0-300 .fg-box[data-name=\"<module>\"]") == "100%"
        # the root: everything again
        click("#icicle-0-300 .fg-box[data-name=\"all\"]")
        b.wait_for("document.querySelector('#icicle-0-300 .fg-box[data-name=\"<module>\"]').style.width !== '100%'")
    finally:
        b.close()


def test_line_record_errors(ours, tmp_path):
    (tmp_path / "bad.dat").write_bytes(b"MEM 1 2\nLINE 1 2 3 4 5 f%2 x.py\n")
    msg = one_error_line(ours("report", "bad.dat", cwd=tmp_path))
    assert msg == "mprof: error: 'bad.dat' line 2: bad LINE record: a '%' without two hex " \
                  "digits after it (or %00) in its function or file"
    (tmp_path / "bad2.dat").write_bytes(b"MEM 1 2\nMEM 2 3\nSTACK 1 2 3 4 f:x.py\n")
    assert "'bad2.dat' line 3: bad STACK record" in one_error_line(ours("report", "bad2.dat", cwd=tmp_path))
    # a torn last LINE (the writer was stopped): a warning, the page without it
    (tmp_path / "torn.dat").write_bytes(b"MEM 1 2\nLINE 1 4096 0 1 5 f a.py\nLINE 1 4096 0 1 6 f /sr")
    a = ours("report", "torn.dat", cwd=tmp_path)
    assert a.rc == 0 and a.out == "torn.html\n", a
    assert "'torn.dat' line 3: incomplete last line skipped" in a.err and len(a.err.splitlines()) == 1
    p = page_data(tmp_path / "torn.html")[0]["profiles"][0]
    assert [r["line"] for r in p["lines"][0]["groups"][0]["rows"]] == [5]
    assert "stacks" not in p
