"""The pprof files of line attribution (user/pprof.c), read by other readers than the one that
wrote them: Python's protobuf (decoding with a module generated from our user/profile.proto) and
`go tool pprof`, which is what people will open them with."""
import gzip
import random
import re
from collections import Counter, defaultdict

from conftest import KIND_NAMES, NOFRAME, OUTSIDE, PY, UNREADABLE, UNRESOLVED, Stack

STACKS = [
    Stack(100, [("<module>", "app.py", 30), ("load", "app.py", 12), ("read", "io/x.py", 7)],
          grown=4096 * 3),
    Stack(100, [("<module>", "app.py", 30), ("load", "app.py", 13)], grown=8192, freed=4096),
    # freed only: still a sample
    Stack(200, [("<module>", "other.py", 1), ("read", "io/x.py", 7)], freed=12288,
          truncated=True),
    Stack(200, kind=NOFRAME, grown=1 << 33),
    Stack(300, kind=OUTSIDE, freed=4096 * 5),
    Stack(300, kind=UNREADABLE, grown=4096),
    Stack(300, kind=UNRESOLVED, grown=4096, freed=4096),
    Stack(300, [("caf\u00e9", "\u00fcber.py", 2)], grown=4096),
]


def decode(pb2, path):
    prof = pb2.Profile()
    with gzip.open(path, "rb") as f:
        prof.ParseFromString(f.read())
    return prof


def frames_of(prof, sample):
    """A sample's frames as (func, file, line), leaf first."""
    locs = {loc.id: loc for loc in prof.location}
    funcs = {fn.id: fn for fn in prof.function}
    st = prof.string_table
    out = []
    for lid in sample.location_id:
        (line,) = locs[lid].line
        fn = funcs[line.function_id]
        out.append((st[fn.name], st[fn.filename], line.line))
    return out


def labels_of(prof, sample):
    st = prof.string_table
    return {st[lb.key]: (lb.num if not lb.str else st[lb.str]) for lb in sample.label}


def test_protobuf_reads_every_stack(profile_pb2, write_profile):
    prof = decode(profile_pb2, write_profile(STACKS, time_ns=1234567890123, duration_ns=987))
    st = prof.string_table
    assert st[0] == ""
    assert len(set(st)) == len(st), "a string is in the table twice"
    assert [(st[t.type], st[t.unit]) for t in prof.sample_type] == [
        ("grown_bytes", "bytes"), ("freed_bytes", "bytes")]
    assert st[prof.default_sample_type] == "grown_bytes"
    assert (st[prof.period_type.type], st[prof.period_type.unit], prof.period) == (
        "space", "bytes", 1)
    assert (prof.time_nanos, prof.duration_nanos) == (1234567890123, 987)
    assert any("mprof" in st[c] for c in prof.comment)

    assert len(prof.sample) == len(STACKS)
    for s, want in zip(prof.sample, STACKS):
        assert frames_of(prof, s) == want.leaf_first()
        assert list(s.value) == [want.grown, want.freed]
        labels = labels_of(prof, s)
        assert labels.pop("pid") == want.pid
        assert labels == ({"truncated": "true"} if want.truncated else {})

    # one Function per (name, file), one Location per (function, line)
    funcs = {(st[f.name], st[f.filename]) for f in prof.function}
    assert len(funcs) == len(prof.function)
    assert funcs == {(fn, file) for s in STACKS for fn, file, _ in s.leaf_first()}
    locs = {(ln.function_id, ln.line) for loc in prof.location for ln in loc.line}
    assert len(locs) == len(prof.location)
    assert len(locs) == len({fr for s in STACKS for fr in s.leaf_first()})
    assert len({loc.id for loc in prof.location}) == len(prof.location)
    assert 0 not in {loc.id for loc in prof.location} | {f.id for f in prof.function}


def random_stacks(seed, n):
    rnd = random.Random(seed)
    files = ["m%d.py" % i for i in range(6)]
    funcs = ["<module>", "<listcomp>", "f", "g", "Cls.method", "h"]
    stacks = []
    for _ in range(n):
        kind = rnd.choice([PY] * 6 + [NOFRAME, OUTSIDE, UNREADABLE, UNRESOLVED])
        frames = []
        if kind == PY:
            frames = [(rnd.choice(funcs), rnd.choice(files), rnd.randint(1, 40))
                      for _ in range(rnd.randint(1, 30))]
        stacks.append(Stack(rnd.choice([11, 22, 33]), frames, kind=kind,
                            grown=rnd.choice([0, 4096 * rnd.randint(1, 1 << 20)]),
                            freed=rnd.choice([0, 4096 * rnd.randint(1, 1000)]),
                            truncated=rnd.random() < 0.1))
    return stacks


def test_protobuf_random_stacks(profile_pb2, write_profile):
    stacks = random_stacks(11, 400)
    prof = decode(profile_pb2, write_profile(stacks))
    assert len(prof.sample) == len(stacks)
    for s, want in zip(prof.sample, stacks):
        assert frames_of(prof, s) == want.leaf_first()
        assert list(s.value) == [want.grown, want.freed]
        assert labels_of(prof, s)["pid"] == want.pid
    assert len(prof.location) == len({fr for s in stacks for fr in s.leaf_first()})
    assert len(prof.function) == len({fr[:2] for s in stacks for fr in s.leaf_first()})


def parse_raw(text):
    """`go tool pprof -raw`: [(values, [frames leaf first], {label: values})]."""
    samples_part, _, rest = text.partition("\nLocations\n")
    locs_part = rest.partition("\nMappings\n")[0]
    locs = {}
    for ln in locs_part.splitlines():
        # "     3: 0x0 M=1 <module> app.py:30 s=0()"
        m = re.match(r"\s*(\d+): 0x0 M=\d+ (.*) (\S*):(\d+) s=\d+", ln)
        assert m, "a location line pprof wrote otherwise: %r" % ln
        locs[int(m.group(1))] = (m.group(2), m.group(3), int(m.group(4)))
    samples = []
    lines = samples_part.partition("\nSamples:\n")[2].splitlines()
    assert lines[0].split() == ["grown_bytes/bytes[dflt]", "freed_bytes/bytes"]
    for ln in lines[1:]:
        m = re.match(r"\s*(\d+)\s+(\d+):((?: \d+)*)\s*$", ln)
        if m:
            samples.append(([int(m.group(1)), int(m.group(2))],
                            [locs[int(i)] for i in m.group(3).split()], {}))
            continue
        m = re.match(r"\s*(\w+):\[(.*)\]$", ln)
        assert m and samples, "a sample line pprof wrote otherwise: %r" % ln
        samples[-1][2][m.group(1)] = m.group(2)
    return samples


def test_go_pprof_raw(go_pprof, write_profile):
    stacks = STACKS + random_stacks(5, 50)
    got = parse_raw(go_pprof("-raw", write_profile(stacks)))
    # pprof merges the samples of equal frames and labels (here: a kind twice in one process) and
    # leaves out those whose values are all 0; its order is its own
    want = defaultdict(lambda: [0, 0])
    for s in stacks:
        labels = {"pid": str(s.pid)}
        if s.truncated:
            labels["truncated"] = "true"
        v = want[repr((s.leaf_first(), sorted(labels.items())))]
        v[0] += s.grown
        v[1] += s.freed
    want = sorted((k, v) for k, v in want.items() if v != [0, 0])
    got = sorted((repr((frames, sorted(labels.items()))), v) for v, frames, labels in got)
    assert got == want
    assert len(want) > 40


def total(go_pprof, path, index, *args):
    out = go_pprof("-top", "-unit=byte", "-nodefraction=0", "-sample_index=" + index, *args, path)
    m = re.search(r"Showing nodes accounting for (\d+)B, \S+% of (\d+)B total", out)
    assert m, out
    return int(m.group(1)), int(m.group(2)), out


def test_go_pprof_totals_and_pid_focus(go_pprof, write_profile):
    stacks = STACKS + random_stacks(7, 200)
    path = write_profile(stacks)
    for index, attr in (("grown_bytes", "grown"), ("freed_bytes", "freed")):
        want = sum(getattr(s, attr) for s in stacks)
        shown, all_, _ = total(go_pprof, path, index, "-nodecount=100000")
        assert (shown, all_) == (want, want)
        by_pid = Counter()
        for s in stacks:
            by_pid[s.pid] += getattr(s, attr)
        for pid, n in by_pid.items():
            if n:
                shown, all_, _ = total(go_pprof, path, index, "-nodecount=100000",
                                       "-tagfocus=pid=%d" % pid)
                assert (shown, all_) == (n, want)


def test_go_pprof_names_are_kept(go_pprof, write_profile):
    """pprof demangles what looks like C++; "<module>" and the kinds' "<...>" must stay whole."""
    path = write_profile(STACKS)
    _, _, out = total(go_pprof, path, "grown_bytes", "-nodecount=1000")
    flat = defaultdict(int)
    for ln in out.splitlines():
        m = re.match(r"\s*(\d+)B\s+\S+\s+\S+\s+\d+B\s+\S+\s+(.+)$", ln)
        if m:
            flat[m.group(2)] += int(m.group(1))
    for name in ("<module>", KIND_NAMES[NOFRAME], KIND_NAMES[UNREADABLE], "caf\u00e9"):
        assert name in out, out
    assert flat[KIND_NAMES[NOFRAME]] == 1 << 33
    assert flat["read"] == 4096 * 3


def test_names_not_utf8_are_readable(profile_pb2, write_profile):
    """A file name is whatever bytes the target had; protobuf's readers want UTF-8 strings."""
    stacks = [Stack(1, [("ok", "caf\u00e9.py", 1), ("f\udcc3", "bad\udcff\udcfe.py", 2)],
                    grown=4096)]
    prof = decode(profile_pb2, write_profile(stacks))
    assert frames_of(prof, prof.sample[0]) == [("f\ufffd", "bad\ufffd\ufffd.py", 2),
                                              ("ok", "caf\u00e9.py", 1)]
