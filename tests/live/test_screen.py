"""The live view on a real terminal: tmux panes of 80x24 (and a resize), keys through
send-keys, the screen through capture-pane. The table is the driver's synthetic fleet, run by
the real recording loop; the ground truth is the same fleet's plain lines (final_table)."""
import os
import re

import pytest

from conftest import INTERVAL, SETTLE, cells, order, width

UNITS = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3, "TiB": 1024 ** 4}
TITLES = ["PID", "USER", "COMMAND", "RSS", "PEAK", "WHEN", "GROWTH/1m", "CHILDREN"]
WHEN_RE = re.compile(r"^(now|-\d+s|\d\d:\d\d:\d\d|[A-Z][a-z]{2} \d\d|-)$")


def human(text, signed=False):
    """A human byte figure: (bytes, half a unit of its last digit)."""
    text = text.strip()
    if text == "0":
        return 0, 0
    sign = 1
    if signed:
        assert text[0] in "+-", text
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    num, unit = text.split(" ")
    assert re.fullmatch(r"\d+(\.\d+)?", num) and len(num) <= 4, text
    decimals = len(num.split(".")[1]) if "." in num else 0
    scale = UNITS[unit]
    return sign * float(num) * scale, 0.5 * 10 ** -decimals * scale


def columns(header):
    """Display spans of the cells, from the column titles (numbers are right-aligned)."""
    c = "".join(ch if ch else "\0" for ch in cells(header))
    pos = {t: c.index(t) for t in TITLES}
    end = {t: pos[t] + len(t) for t in TITLES}
    return {
        "pid": (0, end["PID"]),
        "user": (pos["USER"], pos["COMMAND"] - 1),
        "comm": (pos["COMMAND"], end["RSS"] - 8 - 1),
        "rss": (end["RSS"] - 8, end["RSS"]),
        "peak": (end["PEAK"] - 8, end["PEAK"]),
        "when": (end["WHEN"] - 8, end["WHEN"]),
        "growth": (end["GROWTH/1m"] - 9, end["GROWTH/1m"]),
        "children": (end["CHILDREN"] - 8, end["CHILDREN"]),
    }


def parse_screen(lines):
    """The title, totals, column spans and table rows of a screen."""
    cols = columns(lines[2])
    rows = []
    for line in lines[3:-1]:
        if not line.strip():
            continue
        c = cells(line)
        row = {k: "".join(c[a:b]).strip() for k, (a, b) in cols.items()}
        row["pid"] = int(row["pid"])
        rows.append(row)
    return {"title": lines[0], "totals": lines[1], "cols": cols, "rows": rows}


def totals_line(t):
    return ("tracked %d  started %d  exited %d  OOM kills %d  records lost %d  dropped %d"
            % (t["tracked"], t["started"], t["exited"], t["oom_kills"], t["records_lost"],
               t["dropped"]))


def settled(final, t, key="rss", first=0, h=24):
    """A predicate: the screen shows the settled table, sorted by @key, from row @first."""
    total, procs = final
    want = order(procs, key)[first:first + h - 4]

    def pred(lines):
        # a tick after SETTLE has started: the screen shows the settled values (or their
        # next redraw, the same)
        if t.tick() <= SETTLE:
            return False
        if len(lines) < 4 or lines[1].strip() != totals_line(total):
            return False
        if "rows %d-%d of %d" % (first + 1, first + len(want), len(procs)) not in lines[0]:
            return False
        try:
            s = parse_screen(lines)
        except (ValueError, IndexError):
            return False
        return [r["pid"] for r in s["rows"]] == want
    return pred


def start_view(tmux_factory, driver, *args, w=80, h=24, **kw):
    t = tmux_factory(w, h)
    t.start([driver, "--interval", str(INTERVAL), "--tick-file", os.path.join(t.tmp, "tick")]
            + list(args), **kw)
    return t


def check_restored(t, rc=0, stderr_has=None):
    """After the driver's end: exit status, the terminal's modes, the normal screen back."""
    t.wait_done()
    assert int(t.read("rc")) == rc
    assert t.read("stty.before") == t.read("stty.after"), "terminal modes not restored"
    assert t.flag("alternate_on") == "0", "still on the alternate screen"
    assert t.flag("cursor_flag") == "1", "cursor left hidden"
    assert t.flag("keypad_flag") == "0" and t.flag("keypad_cursor_flag") == "0", \
        "keypad left in application mode"
    lines = t.screen()
    text = "\n".join(lines)
    assert "BEFORE-MARK" in text and "AFTER-MARK" in text, text
    assert "PID" not in text and "mprof fleet" not in text, "the table is left on screen:\n" + text
    if stderr_has is not None:
        err = t.read("stderr").decode("utf-8", "replace")
        assert stderr_has in err, err
        assert "Sanitizer" not in err and "runtime error" not in err, err
    return lines


@pytest.fixture
def view(tmux_factory, driver, final_table):
    """A running view at 80x24 showing the settled table."""
    t = start_view(tmux_factory, driver)
    t.wait(settled(final_table, t), what="the settled table")
    return t


def test_fits_80x24(view, final_table):
    total, procs = final_table
    lines = view.screen()
    assert len(lines) == 24
    assert view.flag("alternate_on") == "1"
    for line in lines:
        assert width(line) <= 80, line
    assert lines[0].startswith("mprof fleet  ")
    assert "sorted by RSS" in lines[0]
    assert lines[0].rstrip().endswith("rows 1-20 of %d" % len(procs))
    assert lines[1].strip() == totals_line(total)
    assert lines[2].split() == TITLES
    assert lines[-1].startswith("r RSS  p peak  g growth")
    assert "q quit" in lines[-1]
    s = parse_screen(lines)
    assert len(s["rows"]) == 20
    # every column of the header inside 80 columns, the last one ending at the edge
    assert s["cols"]["children"][1] == 80


def test_cells_match_the_table(view, final_table):
    _, procs = final_table
    by_pid = {p["pid"]: p for p in procs}
    view.keys("End")
    view.wait(settled(final_table, view, first=len(procs) - 20), what="the last rows")
    seen = parse_screen(view.screen())["rows"]
    view.keys("Home")
    s = parse_screen(view.wait(settled(final_table, view)))
    seen += s["rows"]
    user_w = s["cols"]["user"][1] - s["cols"]["user"][0]
    assert user_w == 10  # 9, and the one column to spare at 80
    for row in seen:
        p = by_pid[row["pid"]]
        for k in ("rss", "peak"):
            v, tol = human(row[k])
            assert abs(v - p[k]) <= tol + 1e-6 * p[k], (row, p)
        g, tol = human(row["growth"], signed=row["growth"] != "0")
        assert abs(g - p["growth"]) <= tol, (row, p)
        assert WHEN_RE.match(row["when"]), row
        if p["state"] == "alive":
            assert row["children"] == str(p["children"]), (row, p)
        else:
            assert row["children"] == "exited", (row, p)
        user = p["user"].decode()
        if len(user) <= user_w:
            assert row["user"] == user, row
        else:  # cut, and said so
            assert row["user"] == user[:user_w - 1] + "+", row


def test_units_and_when(view, final_table):
    rows = {r["pid"]: r for r in parse_screen(view.screen())["rows"]}
    assert rows[1000]["rss"].endswith("GiB")  # 3.1 GiB
    view.keys("End")
    view.wait(lambda l: "rows 23-42" in l[0], what="the end")
    rows = {r["pid"]: r for r in parse_screen(view.screen())["rows"]}
    assert rows[1007]["rss"] == "700 B"
    assert any(r["rss"].endswith("KiB") or r["growth"].endswith("KiB") for r in rows.values())
    view.keys("p")
    rows = {r["pid"]: r for r in parse_screen(
        view.wait(settled(final_table, view, key="peak")))["rows"]}
    # peaks an hour old show the time of day, two days old the date
    assert re.fullmatch(r"\d\d:\d\d:\d\d", rows[1021]["when"]), rows[1021]
    assert re.fullmatch(r"[A-Z][a-z]{2} \d\d", rows[1049]["when"]), rows[1049]


@pytest.mark.parametrize("key,name,field", [
    ("p", "PEAK", "peak"), ("g", "GROWTH/1m", "growth"), ("r", "RSS", "rss")])
def test_sort_keys(view, final_table, key, name, field):
    view.keys(key)
    lines = view.wait(settled(final_table, view, key=field), what="sorted by " + field)
    assert "sorted by %s" % name in lines[0]


def test_sort_keys_in_a_row(view, final_table):
    for key, field in (("g", "growth"), ("p", "peak"), ("r", "rss"), ("g", "growth")):
        view.keys(key)
        view.wait(settled(final_table, view, key=field), what="sorted by " + field)


def test_exited_marked_after_the_live(view, final_table):
    _, procs = final_table
    exited = [p["pid"] for p in procs if p["state"] == "exited"]
    assert sorted(exited) == [1014, 5001]
    assert 1035 not in [p["pid"] for p in procs]  # exited earlier and left the table
    view.keys("End")
    lines = view.wait(settled(final_table, view, first=len(procs) - 20), what="the last rows")
    rows = parse_screen(lines)["rows"]
    assert [r["pid"] for r in rows[-2:]] == sorted(exited, key=lambda pid: order(
        procs, "rss").index(pid))
    for r in rows[-2:]:
        assert r["children"] == "exited"
    for r in rows[:-2]:
        assert r["children"] != "exited"
    assert 1035 not in [r["pid"] for r in rows]


def test_scrolling(view, final_table):
    _, procs = final_table
    n = len(procs)
    assert n > 20  # more rows than lines
    steps = [("Down", 1), ("Down", 2), ("Up", 1), ("NPage", 21), ("NPage", n - 20),
             ("PPage", max(0, n - 40)), ("Home", 0), ("End", n - 20), ("Home", 0)]
    for key, first in steps:
        view.keys(key)
        lines = view.wait(settled(final_table, view, first=first), what="%s to row %d" % (key, first))
        assert "rows %d-%d of %d" % (first + 1, first + 20, n) in lines[0]
    # rows beyond the first screen were shown: the last one by RSS
    assert order(procs, "rss")[-1] not in order(procs, "rss")[:20]


def test_help(view, final_table):
    view.keys("?")
    lines = view.wait(lambda l: any(x.startswith("Keys") for x in l), what="the help")
    assert all(width(x) <= 80 for x in lines)
    assert lines[-1].startswith("? or any key")
    view.keys("?")
    view.wait(settled(final_table, view), what="the table again")


def test_utf8_names(view, final_table):
    rows = {r["pid"]: r for r in parse_screen(view.screen())["rows"]}
    view.keys("End")
    rows.update({r["pid"]: r for r in parse_screen(view.wait(
        settled(final_table, view, first=len(final_table[1]) - 20)))["rows"]})
    assert rows[1021]["comm"] == "caf\u00e9"
    assert rows[1028]["comm"] == "\u5185\u5b58\u6d4b\u8bd5"  # 4 wide characters
    assert rows[1007]["comm"] == "my worker"
    assert rows[1014]["comm"] == "back\\slash"
    assert rows[1119]["comm"] == "?ctl?name"  # control characters
    assert rows[1042]["comm"] == "abcdefghijklmn?"  # a cut UTF-8 sequence
    assert rows[1049]["comm"] == "verylongcommand"  # 15 bytes: whole at 80 columns


def test_c_locale_names(tmux_factory, driver, final_table):
    """In a locale without UTF-8, what does not decode is '?', and the columns still align."""
    t = tmux_factory()
    t.env["LANG"] = "C"
    t.start([driver, "--interval", str(INTERVAL), "--tick-file", os.path.join(t.tmp, "tick")])
    lines = t.wait(settled(final_table, t), what="the settled table")
    rows = {r["pid"]: r for r in parse_screen(lines)["rows"]}
    assert rows[1196]["comm"] == "?" * 12
    assert rows[1273]["comm"] == "caf??"
    t.keys("q")
    check_restored(t, stderr_has="end: quit key")


def test_resize(view, final_table):
    view.resize(100, 30)
    lines = view.wait(settled(final_table, view, h=30), what="the table at 100x30")
    assert len(lines) == 30
    assert all(width(x) <= 100 for x in lines)
    s = parse_screen(lines)
    assert len(s["rows"]) == 26
    assert s["cols"]["children"][1] == 100
    rows = {r["pid"]: r for r in s["rows"]}
    # 21 columns more than a row needs: USER grows from 9 to 24, COMMAND takes the other 6
    assert s["cols"]["user"][1] - s["cols"]["user"][0] == 24
    assert s["cols"]["comm"][1] - s["cols"]["comm"][0] == 15 + 6
    assert rows[1021]["user"] == "a-very-long-username"  # whole on a wider screen
    assert rows[5000]["user"] == "svc-batch-ingest-worker+"
    view.keys("End")
    view.wait(settled(final_table, view, first=len(final_table[1]) - 26, h=30), what="End at 100x30")
    # smaller than 80 columns: cut, never wrapped
    view.resize(60, 12)
    lines = view.wait(lambda l: len(l) == 12 and "PID USER" in l[2], what="60x12")
    assert all(width(x) <= 60 for x in lines)
    view.resize(80, 24)
    # the first row shown stays where End put it at 100x30
    view.wait(settled(final_table, view, first=len(final_table[1]) - 26), what="back at 80x24")
    # tmux 3.3 copies alternate-screen lines wider than the old size onto the normal screen
    # when a program leaves after a resize (tmux issue 3510): quit at the original size
    view.keys("q")
    check_restored(view, stderr_has="end: quit key")


def test_tiny_terminal(tmux_factory, driver):
    t = start_view(tmux_factory, driver, w=30, h=4)
    t.wait(lambda l: l and l[0].startswith("terminal too small"), what="too small")
    t.resize(80, 24)
    t.wait(lambda l: len(l) == 24 and "PID USER" in l[2], what="the table")
    t.keys("q")
    check_restored(t)


def test_time_varying(tmux_factory, driver, final_table):
    """Processes join and leave while the view runs: the screen follows."""
    t = start_view(tmux_factory, driver, "--interval", "0.2")
    seen = set()

    def pred(lines):
        if len(lines) > 1 and lines[1].startswith("tracked"):
            seen.add(lines[1].split()[3])  # started
        return settled(final_table, t)(lines)
    t.wait(pred, timeout=20, what="the settled table")
    assert "0" in seen and "3" in seen, seen
    t.keys("q")
    check_restored(t)


# ---- every way out gives the terminal back -------------------------------------------


def test_quit_key(view):
    view.keys("q")
    check_restored(view, stderr_has="end: quit key")


def test_ctrl_c(view):
    view.keys("C-c")
    check_restored(view, stderr_has="end: signal")


def test_duration_ends(tmux_factory, driver):
    t = start_view(tmux_factory, driver, "--duration", "2")
    t.wait(lambda l: len(l) > 2 and "PID USER" in l[2], what="the table")
    check_restored(t, stderr_has="end: duration")


def test_all_processes_exit(tmux_factory, driver):
    t = start_view(tmux_factory, driver, "--end-all", "4")
    check_restored(t, stderr_has="end: all exited after 5 ticks")


def test_error_message_after_restore(tmux_factory, driver):
    t = start_view(tmux_factory, driver, "--fail-at", "3", stderr_to_pane=True)
    t.wait_done()
    assert int(t.read("rc")) == 1
    text = "\n".join(t.screen())
    # printed after mp_live__free(): on the normal screen, between the marks
    assert re.search(r"BEFORE-MARK\nlive_driver: error: the view failed at tick 3: "
                     r"Input/output error\nAFTER-MARK", text), text
    assert t.read("stty.before") == t.read("stty.after")
    assert t.flag("alternate_on") == "0"


def test_suspend_and_resume(tmux_factory, driver, final_table):
    """Ctrl-Z gives the terminal back to the shell; fg draws the table again."""
    t = tmux_factory()
    t.tmux("new-session", "-d", "-s", "t", "-x", "80", "-y", "24",
           "bash --norc --noprofile -i")  # an interactive shell: job control
    t.wait(lambda l: l and re.search(r"[$#]$", l[0].rstrip()), what="the shell")
    t.keys("stty -g > %s/stty.before; %s --interval %s --tick-file %s/tick" % (
        t.tmp, driver, INTERVAL, t.tmp), "Enter")
    t.wait(settled(final_table, t), what="the settled table")
    t.keys("C-z")
    t.wait(lambda l: any("Stopped" in x for x in l), what="the job stopped")
    assert t.flag("alternate_on") == "0"
    t.keys("stty -g > %s/stty.stopped; fg" % t.tmp, "Enter")
    t.wait(settled(final_table, t), what="the table again")
    t.keys("q")
    t.keys("stty -g > %s/stty.after; touch %s/done" % (t.tmp, t.tmp), "Enter")
    t.wait_done()
    assert t.read("stty.before") == t.read("stty.stopped") == t.read("stty.after")
    assert t.flag("alternate_on") == "0"


# ---- plain lines on a terminal -------------------------------------------------------


def test_lines_option_on_a_tty(tmux_factory, driver):
    t = start_view(tmux_factory, driver, "--lines", "--duration", "0.35")
    t.wait_done()
    assert int(t.read("rc")) == 0
    text = t.history()
    assert "# mprof fleet v1" in text and "\ntotal " in text, text
    assert t.read("stty.before") == t.read("stty.after")


def test_dumb_terminal_gives_lines(tmux_factory, driver):
    """A terminal without cursor addressing cannot show the table: plain lines instead."""
    t = start_view(tmux_factory, driver, "--duration", "0.35", env="TERM=dumb")
    t.wait_done()
    assert int(t.read("rc")) == 0
    assert "# mprof fleet v1" in t.history()
    assert t.read("stty.before") == t.read("stty.after")
