"""mprof plot on real memory_profiler files: valid PNG/SVG/PDF/EPS, the right size, a curve whose
drawn vertices are exactly the data points under one linear map, one curve per child, and clean
failures on bad input."""
import os
import re
import struct
import zlib

import pytest

from conftest import DATA, copy_data

CURVE_RGB = "rgb(12%,31%,61%)"  # the first profile's colour, plot.c profile_rgb[0]
AXIS_RGB = "rgb(25%,25%,25%)"


def one_error_line(res):
    assert res.rc != 0, res
    lines = res.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mprof: error: "), res
    return lines[0]


def png_size(path):
    """(width, height) from a PNG's signature and IHDR."""
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def png_info(path):
    """(width, height, rows of RGB tuples) of an 8-bit RGB/RGBA PNG, decoded here."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]
        assert zlib.crc32(kind + body) & 0xffffffff == crc, kind
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, ctype = ihdr[:4]
    assert depth == 8 and ctype in (2, 6)
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    rows, prev, stride = [], bytearray(w * bpp), w * bpp
    for y in range(h):
        ft = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ft == 1:
                line[i] = (line[i] + a) & 0xff
            elif ft == 2:
                line[i] = (line[i] + b) & 0xff
            elif ft == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xff
            elif ft == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pr) & 0xff
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(w)])
        prev = line
    return w, h, rows


def svg_paths(path):
    """[(style, [(x, y), ...])] of the stroked straight-line paths of a cairo SVG."""
    text = open(path).read()
    out = []
    for m in re.finditer(r'<path style="([^"]*)" d="([^"]*)"', text):
        style, d = m.groups()
        if "fill:none" not in style or " C " in d:
            continue
        nums = re.findall(r"[ML] (-?[\d.]+) (-?[\d.]+)", d)
        out.append((style, [(float(x), float(y)) for x, y in nums]))
    return out


def read_dat(path):
    mem, funcs, kids = [], [], {}
    for line in open(path):
        f = line.split()
        if not f:
            continue
        if f[0] == "MEM":
            mem.append((float(f[2]), float(f[1])))
        elif f[0] == "FUNC":
            funcs.append((float(f[3]), float(f[2])))
            funcs.append((float(f[5]), float(f[4])))
        elif f[0] == "CHLD":
            kids.setdefault(f[1], []).append((float(f[3]), float(f[2])))
    return mem, funcs, kids


def check_curve_is_data(vertices, points):
    """Every drawn vertex is a data point under the map fixed by the extreme ones."""
    t0 = min(t for t, _ in points)
    t1 = max(t for t, _ in points)
    m0 = min(m for _, m in points)
    m1 = max(m for _, m in points)
    x0 = min(x for x, _ in vertices)
    x1 = max(x for x, _ in vertices)
    ytop = min(y for _, y in vertices)
    ybot = max(y for _, y in vertices)
    sx = (x1 - x0) / (t1 - t0)
    sy = (ybot - ytop) / (m1 - m0)
    assert sx > 0 and sy > 0
    for x, y in vertices:
        assert any(abs(x - (x0 + (t - t0) * sx)) < 0.6 and abs(y - (ytop + (m1 - m) * sy)) < 0.6
                   for t, m in points), (x, y)
    return x0, x1, ytop, ybot


def frame(paths):
    """The axes rectangle: the biggest closed rectangle drawn in the axis colour."""
    rects = []
    for style, v in paths:
        if AXIS_RGB in style and len(v) in (4, 5):  # cairo closes with "Z M x y"
            xs = [x for x, _ in v]
            ys = [y for _, y in v]
            rects.append((max(xs) - min(xs)) * (max(ys) - min(ys)))
            rects[-1] = (rects[-1], min(xs), min(ys), max(xs), max(ys))
    return max(rects)[1:]


def main_curve(paths):
    cands = [v for style, v in paths if CURVE_RGB in style and "stroke-width:2;" in style]
    assert len(cands) == 1
    return cands[0]


def test_default_output_is_png_beside_the_data(ours, real_files, tmp_path):
    copy_data(tmp_path, "mp_nested.dat")
    a = ours("plot", "mp_nested.dat", cwd=tmp_path)
    assert a.rc == 0, a
    assert a.out == "mp_nested.png\n"
    assert png_size(str(tmp_path / "mp_nested.png")) == (1260, 540)
    png_info(str(tmp_path / "mp_nested.png"))  # checksums and filters decode
    # newest profile, said so, written beside it
    os.rename(str(tmp_path / "mp_nested.dat"), str(tmp_path / "mprofile_20240102030405.dat"))
    a = ours("plot", cwd=tmp_path)
    assert a.rc == 0, a
    assert a.out == "Using last profile data.\nmprofile_20240102030405.png\n"
    sub = tmp_path / "sub"
    sub.mkdir()
    copy_data(sub, "mp_plain.dat")
    a = ours("plot", "sub/mp_plain.dat", cwd=tmp_path)
    assert a.out == "sub/mp_plain.png\n" and (sub / "mp_plain.png").exists()


@pytest.mark.parametrize("ext,magic", [(".png", b"\x89PNG\r\n\x1a\n"), (".svg", b"<?xml"),
                                       (".pdf", b"%PDF-"), (".eps", b"%!PS-Adobe-3.0 EPSF"),
                                       (".ps", b"%!PS-Adobe-3.0\n")])
def test_output_formats(ours, real_files, tmp_path, ext, magic):
    out = tmp_path / ("p" + ext)
    a = ours("plot", "-o", out, real_files / "funcs.dat")
    assert a.rc == 0 and a.out == "", a
    data = out.read_bytes()
    assert data.startswith(magic)
    if ext == ".pdf":
        assert data.rstrip().endswith(b"%%EOF")
    if ext == ".svg":
        assert re.search(rb'<svg[^>]*width="1260pt" height="540pt"', data)


@pytest.mark.parametrize("name", ["funcs.dat", "children.dat", "plain.dat"])
def test_svg_curve_is_the_data(ours, real_files, tmp_path, name):
    out = str(tmp_path / "c.svg")
    a = ours("plot", "-n", "-o", out, real_files / name)
    assert a.rc == 0, a
    paths = svg_paths(out)
    mem, funcs, kids = read_dat(str(real_files / name))
    # memory_profiler merges the FUNC entry/exit points into the curve; so do we
    x0, x1, ytop, ybot = check_curve_is_data(main_curve(paths), mem + funcs)
    fx0, fy0, fx1, fy1 = frame(paths)
    assert fx0 < x0 < x1 < fx1 and fy0 < ytop < ybot <= fy1 + 0.6
    # the curve spans nearly all the width: only a small margin each side
    assert (x1 - x0) / (fx1 - fx0) > 0.9


def test_window_maps_to_the_frame(ours, real_files, tmp_path):
    mem, funcs, _ = read_dat(str(real_files / "plain.dat"))
    pts = sorted(mem + funcs)
    dur = pts[-1][0] - pts[0][0]
    out = str(tmp_path / "w.svg")
    a = ours("plot", "-w", "0,%r" % dur, "-o", out, real_files / "plain.dat")
    assert a.rc == 0, a
    paths = svg_paths(out)
    x0, x1, _, _ = check_curve_is_data(main_curve(paths), pts)
    fx0, _, fx1, _ = frame(paths)
    assert abs(x0 - fx0) < 0.6 and abs(x1 - fx1) < 0.6
    # half the window: only the first half of the points is drawn, up to the frame's edge
    a = ours("plot", "-w", "0,%r" % (dur / 2), "-o", out, real_files / "plain.dat")
    assert a.rc == 0, a
    v = main_curve(svg_paths(out))
    assert len(v) < len(pts)


def test_one_curve_per_child(ours, real_files, tmp_path):
    out = str(tmp_path / "k.svg")
    a = ours("plot", "-o", out, real_files / "children.dat")
    assert a.rc == 0, a
    _, _, kids = read_dat(str(real_files / "children.dat"))
    assert len(kids) >= 2
    child_curves = [v for style, v in svg_paths(out) if "stroke-width:1.4;" in style]
    assert len(child_curves) == len(kids)


def test_png_shows_peak_and_legend(ours, real_files, tmp_path):
    out = str(tmp_path / "p.png")
    a = ours("plot", "-o", out, real_files / "funcs.dat")
    assert a.rc == 0, a
    w, h, rows = png_info(out)
    red = sum(1 for r in rows for px in r if px[0] > 190 and px[1] < 80 and px[2] < 80)
    blue = sum(1 for r in rows for px in r
               if abs(px[0] - 31) < 12 and abs(px[1] - 79) < 12 and abs(px[2] - 156) < 12)
    assert red > 300  # dashed cross-hair, dot and label box of the peak
    assert blue > 300  # the curve
    # legend on the right: coloured swatches right of the plot area
    legend_cols = {x for y in range(h) for x in range(int(w * 0.62), w)
                   if rows[y][x] != (255, 255, 255)}
    assert legend_cols


@pytest.mark.parametrize("flags", [["-f"], ["-s"], ["-n"], ["-f", "-s", "-w", "0.1,0.6"],
                                   ["--flame", "--slope", "--title", "t"],
                                   ["--backend", "Agg"], ["--no-function-ts", "--window=0,1"]])
def test_flags_on_real_files(ours, real_files, tmp_path, flags):
    for name in ("funcs.dat", "children.dat", "plain.dat"):
        out = tmp_path / "f.png"
        a = ours("plot", *flags, "-o", out, real_files / name)
        assert a.rc == 0, (flags, name, a)
        assert png_size(str(out))[0] == 1260


def test_overlay_of_files(ours, real_files, tmp_path):
    out = str(tmp_path / "o.svg")
    a = ours("plot", "-o", out, real_files / "funcs.dat", real_files / "plain.dat")
    assert a.rc == 0, a
    curves = [s for s, _ in svg_paths(out) if "stroke-width:2;" in s]
    assert len(curves) == 2 and curves[0] != curves[1]
    a = ours("plot", "funcs.dat", "plain.dat", cwd=real_files)
    assert a.out == "funcs_overlay.png\n"


def test_stored_files_all_plot(ours, tmp_path):
    for name in sorted(os.listdir(DATA)):
        out = tmp_path / (name + ".png")
        a = ours("plot", "-f", "-s", "-o", out, os.path.join(DATA, name))
        assert a.rc == 0, (name, a)


@pytest.mark.parametrize("content,what", [
    ("", "the file is empty"),
    ("CMDLINE python3 x.py\nFUNC a.b 1 2 3 4 0\n", "no MEM samples"),
    ("CMDLINE x\nMEM 1.0 1700000000.0\nMEM 2.5 x\n", "line 3: bad MEM record"),
    ("\x00\x01\x02", "line 1"),
])
def test_plot_bad_files(ours, tmp_path, content, what):
    (tmp_path / "bad.dat").write_bytes(content.encode("latin-1"))
    a = ours("plot", "bad.dat", cwd=tmp_path)
    assert what in one_error_line(a) and a.out == ""
    assert sorted(os.listdir(str(tmp_path))) == ["bad.dat"]


@pytest.mark.parametrize("args,what", [
    (["-w", "1"], "bad window '1'"),
    (["-w", "a,b"], "bad window 'a,b'"),
    (["-w", "5,1"], "XMIN must be below XMAX"),
    (["-w", "1,2,3"], "bad window"),
    (["-w", "nan,1"], "bad window"),
    (["-o", "x.jpg"], "cannot tell the format of 'x.jpg'"),
    (["-o", "nodir/x.png"], "cannot write 'nodir/x.png'"),
    (["--bogus"], "unknown option '--bogus'"),
    (["-t"], "option '-t' needs a value"),
    (["nope.dat"], "'nope.dat' is neither a file nor a profile index"),
    (["sub"], "'sub' is a directory"),
    (["3"], "no profile with index 3"),
])
def test_plot_bad_arguments(ours, tmp_path, args, what):
    copy_data(tmp_path, "mp_plain.dat")
    (tmp_path / "sub").mkdir()
    before = sorted(os.listdir(str(tmp_path)))
    a = ours("plot", *([] if args[-1] in ("nope.dat", "sub", "3") else ["mp_plain.dat"]), *args,
             cwd=tmp_path)
    assert what in one_error_line(a), a
    assert sorted(os.listdir(str(tmp_path))) == before


def test_plot_no_profile(ours, tmp_path):
    assert "no mprofile_*.dat file" in one_error_line(ours("plot", cwd=tmp_path))
