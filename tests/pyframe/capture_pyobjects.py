"""Capture line tables and str objects from a real interpreter, as C data for the unit tests.

    python3.X tests/pyframe/capture_pyobjects.py > fragment.h

Run once per interpreter by `make pyframe-unit-data` (on request only), which concatenates the
fragments into tests/unit/pyobjects_data.h. For each code object of the functions below it
prints the raw line table (co_lnotab on 3.8/3.9, co_linetable on 3.10+), co_firstlineno, the
bytecode length and, for every instruction offset, the line the interpreter's own
PyCode_Addr2Line() gives (called through ctypes): the ground truth of user/pylines.c. For each
sample str it prints the object's bytes (header and characters, as CPython lays them out) and
its UTF-8 encoding (surrogateescape: how file names keep undecodable bytes).
"""
import ctypes
import sys

V = "%d%d" % sys.version_info[:2]
FMT = {"38": 1, "39": 1, "310": 2}.get(V, 3)

addr2line = ctypes.pythonapi.PyCode_Addr2Line
addr2line.argtypes = [ctypes.py_object, ctypes.c_int]
addr2line.restype = ctypes.c_int


def sample_plain(n):
    total = 0
    for i in range(n):
        total += i
    return total


def sample_branches(x):
    try:
        if x > 3:
            y = [i * 2
                 for i in range(x)
                 if i % 3]
        else:
            y = {"k": x,
                 "v": (x, x + 1)}
    except ValueError as e:
        y = str(e)
    finally:
        x = None
    return y


def sample_long(a):
    # a body long enough that address deltas pass 255 and line deltas pass 127
    b = a + 1; c = b + 1; d = c + 1; e = d + 1; f = e + 1; g = f + 1; h = g + 1
    i = h + 1; j = i + 1; k = j + 1; m = k + 1; n = m + 1; o = n + 1; p = o + 1
    q = p + 1; r = q + 1; s = r + 1; t = s + 1; u = t + 1; v = u + 1; w = v + 1
    x = [b, c, d, e, f, g, h, i, j, k, m, n, o, p, q, r, s, t, u, v, w]
    y = sum(x) + len(x) + max(x) + min(x) + sum(z * z for z in x) + sum(z + 1 for z in x)
    return y
























































































































































    return x  # unreachable, 150 lines further down


def sample_async():
    async def coro(x):
        return x
    return coro


class Sample:
    def method(self, v):
        return (lambda w: w + v)(v)


def far_code():
    """A function at line 70001: line numbers above 16 bits."""
    src = "\n" * 70000 + "def far(a):\n    b = a * 2\n    return b - 1\n"
    ns = {}
    exec(compile(src, "far.py", "exec"), ns)
    return ns["far"].__code__


def codes():
    out = []
    for fn in (sample_plain, sample_branches, sample_long, sample_async, Sample.method):
        out.append(fn.__code__)
        out.extend(c for c in fn.__code__.co_consts if hasattr(c, "co_code"))
    out.append(far_code())
    return out


def c_bytes(b):
    return ", ".join("0x%02x" % x for x in b) or "0"


def main():
    print("/* CPython %s, captured by tests/pyframe/capture_pyobjects.py */" % sys.version.split()[0])
    names = []
    for idx, co in enumerate(codes()):
        table = co.co_lnotab if FMT == 1 else co.co_linetable
        ncode = len(co.co_code)
        lines = [addr2line(co, a) for a in range(0, ncode, 2)]
        name = "py%s_code%d" % (V, idx)
        names.append(name)
        print("static const uint8_t %s_table[] = { %s };" % (name, c_bytes(table)))
        print("static const int %s_lines[] = { %s };" % (name, ", ".join(map(str, lines))))
        print("static const struct code_sample %s = { %d, %d, %s_table, %d, %d, %s_lines, %d, \"%s\" };"
              % (name, int(V[1:]), FMT, name, len(table), co.co_firstlineno, name, len(lines),
                 co.co_name))
    print("static const struct code_sample *const py%s_codes[] = { %s, NULL };"
          % (V, ", ".join("&" + n for n in names)))
    strs = ["plain ascii name", "caf\xe9 latin-1", "\u4e2d\u6587 two-byte", "emoji \U0001f40d four",
            "/tmp/raw\udcff\udc80bytes.py", ""]
    snames = []
    for idx, s in enumerate(strs):
        s = "".join(s)  # a fresh object, not an interned constant
        raw = ctypes.string_at(id(s), sys.getsizeof(s))
        name = "py%s_str%d" % (V, idx)
        snames.append(name)
        utf8 = s.encode("utf-8", "surrogateescape")
        print("static const uint8_t %s_raw[] = { %s };" % (name, c_bytes(raw)))
        print("static const uint8_t %s_utf8[] = { %s };" % (name, c_bytes(utf8 + b"\0")))
        print("static const struct str_sample %s = { %d, %s_raw, %d, %s_utf8, %d };"
              % (name, int(V[1:]), name, len(raw), name, len(utf8)))
    print("static const struct str_sample *const py%s_strs[] = { %s, NULL };"
          % (V, ", ".join("&" + n for n in snames)))


main()
