"""mprof peak --json: the peaks of the MEM and CHLD lines of real files (memory_profiler's own and
ours) as valid JSON, keys in a fixed order, any CMDLINE escaped, the selection and errors of
`mprof peak`."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import DATA, _env, copy_data

KEYS = ["file", "cmdline", "peak_bytes", "peak_mib", "peak_time", "children"]
CHILD_KEYS = ["pid", "peak_bytes", "peak_mib", "peak_time"]


def lines_of(path):
    """What a .dat file says, read here from its lines: CMDLINE (the last), the MEM samples, the
    CHLD samples per pid in order of first appearance, the FUNC calls."""
    cmdline, mem, kids, funcs = None, [], {}, []
    with open(path, "rb") as f:
        for raw in f:
            line = raw.rstrip(b"\r\n")
            w = line.split()
            if not w:
                continue
            if w[0] == b"CMDLINE":
                cmdline = line.strip(b" \t\r\v\f")[len(b"CMDLINE"):].strip(b" \t\r\v\f")
            elif w[0] == b"MEM":
                mem.append((float(w[2]), float(w[1])))
            elif w[0] == b"CHLD":
                kids.setdefault(int(w[1]), []).append((float(w[3]), float(w[2])))
            elif w[0] == b"FUNC":
                funcs.append((w[1].decode(), float(w[2]), float(w[3]), float(w[4]), float(w[5]),
                              int(w[6]) if len(w) > 6 else -1))
    return cmdline, mem, kids, funcs


def highest(samples):
    """(t, mib) of the highest sample, the first one on ties."""
    best = None
    for t, m in samples:
        if best is None or m > best[1]:
            best = (t, m)
    return best


def ordered(text):
    """Parse JSON keeping each object's keys in order (lists of pairs become dicts with .keys)."""
    return json.loads(text, object_pairs_hook=lambda pairs: dict(pairs))


def check_entry(entry, path, name):
    cmdline, mem, kids, _ = lines_of(path)
    assert list(entry.keys()) == KEYS
    assert entry["file"] == name
    assert entry["cmdline"] == (None if cmdline is None else cmdline.decode("utf-8", "replace"))
    t, m = highest(mem)
    assert entry["peak_mib"] == m and entry["peak_time"] == t
    assert abs(entry["peak_bytes"] - m * 2**20) <= 1
    assert [c["pid"] for c in entry["children"]] == list(kids)
    for c in entry["children"]:
        assert list(c.keys()) == CHILD_KEYS
        ct, cm = highest(kids[c["pid"]])
        assert c["peak_mib"] == cm and c["peak_time"] == ct
        assert abs(c["peak_bytes"] - cm * 2**20) <= 1


def test_json_is_the_lines_of_real_files(ours, real_files):
    names = ["funcs.dat", "children.dat", "plain.dat"]
    a = ours("peak", "--json", *names, cwd=real_files)
    assert a.rc == 0 and a.err == "", a
    doc = ordered(a.out)
    assert [e["file"] for e in doc] == names
    for e, n in zip(doc, names):
        check_entry(e, str(real_files / n), n)
        # memory_profiler writes psutil's RSS: a whole number of pages, which the bytes recover
        assert e["peak_bytes"] % 4096 == 0
        assert all(c["peak_bytes"] % 4096 == 0 for c in e["children"])
    assert doc[1]["children"], "the -M run has children"


def test_json_is_the_lines_of_stored_files(ours):
    names = sorted(n for n in os.listdir(DATA) if n.endswith(".dat"))
    a = ours("peak", "--json", *names, cwd=DATA)
    assert a.rc == 0, a
    doc = ordered(a.out)
    assert len(doc) == len(names)
    for e, n in zip(doc, names):
        check_entry(e, os.path.join(DATA, n), n)


def test_json_agrees_with_the_text(ours, real_files):
    names = ["funcs.dat", "children.dat", "plain.dat"]
    text = ours("peak", *names, cwd=real_files).out.splitlines()
    doc = json.loads(ours("peak", "--json", *names, cwd=real_files).out)
    want = []
    for e in doc:
        want.append("%s\t%.3f MiB" % (e["file"], e["peak_mib"]))
        want += ["  Child %d\t\t\t%.3f MiB" % (c["pid"], c["peak_mib"]) for c in e["children"]]
    assert text == want


@pytest.mark.parametrize("func", ["__main__.leaf", "__main__.top", ".spike"])
def test_json_func(ours, real_files, func):
    a = ours("peak", "--json", "--func", func, "funcs.dat", cwd=real_files)
    assert a.rc == 0, a
    [e] = ordered(a.out)
    assert list(e.keys()) == KEYS[:2] + ["func"] + KEYS[2:]
    assert e["func"] == func
    _, mem, _, funcs = lines_of(str(real_files / "funcs.dat"))
    spans = [(f[2], f[4]) for f in funcs if f[0] == func]
    inside = [(t, m) for t, m in mem if any(a0 <= t <= a1 for a0, a1 in spans)]
    if not inside:
        assert e["peak_mib"] is None and e["peak_bytes"] is None and e["peak_time"] is None
    else:
        t, m = highest(inside)
        assert (e["peak_time"], e["peak_mib"]) == (t, m)
        text = ours("peak", "--func", func, "funcs.dat", cwd=real_files).out
        assert text.splitlines()[0] == "funcs.dat\t%.3f MiB" % m


def test_json_unknown_func_is_an_error(ours, real_files):
    a = ours("peak", "--json", "--func", "nope", "funcs.dat", cwd=real_files)
    assert a.rc == 1 and len(a.err.splitlines()) == 1 and "no function 'nope'" in a.err, a
    [e] = json.loads(a.out)  # still valid JSON: the NaN of the text is null
    assert e["peak_mib"] is None


HOSTILE = (b'"quoted" back\\slash \x01\x02\x1b[31m\x7f tab\there '
           b'\xff\xfe bad \xc0\xaf overlong \xed\xa0\x80 surrogate \xe2\x82 cut '
           b'\xf0\x9f\x98\x80 emoji \xe2\x80\xa8 sep </script><!-- & caf\xc3\xa9')


def test_json_any_cmdline_and_file_name(mprof_bin, tmp_path):
    name = b'we"ird \\ \xff name.dat'
    path = os.path.join(bytes(tmp_path), name)
    with open(path, "wb") as f:
        f.write(b"CMDLINE " + HOSTILE + b"\nMEM 10.5 1795316000.25\nCHLD 7 3.25 1795316000.5\n")
    p = subprocess.run([mprof_bin.encode(), b"peak", b"--json", name], cwd=bytes(tmp_path),
                       env=_env(), capture_output=True)
    assert p.returncode == 0, p
    doc = json.loads(p.stdout.decode("utf-8"))  # strict UTF-8: invalid bytes were replaced
    assert doc[0]["cmdline"] == HOSTILE.decode("utf-8", "replace")
    assert doc[0]["file"] == name.decode("utf-8", "replace")
    assert doc[0]["peak_bytes"] == 11010048 and doc[0]["children"][0]["peak_bytes"] == 3407872
    # control characters never appear raw
    assert not any(b < 0x20 for b in p.stdout.replace(b"\n", b""))


def test_json_newest_profile_keeps_stdout_json(ours, tmp_path):
    copy_data(tmp_path, "mp_children.dat", "mp_plain.dat")
    os.rename(str(tmp_path / "mp_children.dat"), str(tmp_path / "mprofile_20240102030405.dat"))
    os.rename(str(tmp_path / "mp_plain.dat"), str(tmp_path / "mprofile_20250102030405.dat"))
    a = ours("peak", "--json", cwd=tmp_path)
    assert a.rc == 0, a
    assert [e["file"] for e in json.loads(a.out)] == ["mprofile_20250102030405.dat"]
    assert "last profile" in a.err
    b = ours("peak", "--json", "-2", cwd=tmp_path)  # an index, as peak takes them
    assert [e["file"] for e in json.loads(b.out)] == ["mprofile_20240102030405.dat"], b


def test_json_errors_are_one_line(ours, tmp_path):
    a = ours("peak", "--json", cwd=tmp_path)  # no profile at all
    assert a.rc == 1 and a.out == "" and len(a.err.splitlines()) == 1, a
    a = ours("peak", "--json", "missing.dat", cwd=tmp_path)
    assert a.rc == 1 and a.out == "" and len(a.err.splitlines()) == 1, a
    (tmp_path / "bad.dat").write_text("MEM 1.0 2.0\ngarbage here\n")
    copy_data(tmp_path, "mp_plain.dat")
    a = ours("peak", "--json", "mp_plain.dat", "bad.dat", cwd=tmp_path)
    assert a.rc == 1, a
    assert a.err.splitlines() == ["mprof: error: 'bad.dat' line 2: not a profile record "
                                  "(expected CMDLINE, MEM, CHLD, FUNC, LINE or STACK)"], a
    # the profiles that could be read are still there, and the document is whole
    assert [e["file"] for e in json.loads(a.out)] == ["mp_plain.dat"]
    a = ours("peak", "--json", "bad.dat", cwd=tmp_path)
    assert a.rc == 1 and json.loads(a.out) == [], a
