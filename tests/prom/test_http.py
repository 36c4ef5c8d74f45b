"""The exporter's HTTP side, on raw sockets against synth_exporter (a real recording loop):
negotiation, paths and methods, keep-alive, HEAD, and hostile clients, which must never block
the loop, crash it or make it spin."""
import http.client
import socket
import time

import pytest

OM_CT = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TEXT_CT = "text/plain; version=0.0.4; charset=utf-8"
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                     "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


def request(port, method="GET", path="/metrics", headers=None, timeout=5):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def timed_scrape(port, timeout=5):
    t0 = time.monotonic()
    status, _, body = request(port, timeout=timeout)
    assert status == 200 and b"mprof_resident_bytes" in body
    return time.monotonic() - t0


def raw(port, data, timeout=3):
    """Send @data, read until the server closes (or @timeout); returns what came back."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        if data:
            s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


@pytest.mark.parametrize("accept,ctype", [
    (None, TEXT_CT),
    ("*/*", TEXT_CT),
    ("text/plain", TEXT_CT),
    (PROMETHEUS_ACCEPT, OM_CT),
    ("application/openmetrics-text", OM_CT),
    ("application/openmetrics-text;q=0.3, text/plain;q=0.6", TEXT_CT),
    ("application/openmetrics-text;version=0.0.1", TEXT_CT),
])
def test_negotiation(synth, accept, ctype):
    s = synth()
    status, headers, body = request(s.port, headers={"Accept": accept} if accept else {})
    assert status == 200
    assert headers["Content-Type"] == ctype
    assert body.endswith(b"# EOF\n") == (ctype == OM_CT)
    assert (b"# UNIT mprof_resident_bytes bytes\n" in body) == (ctype == OM_CT)


def test_accept_headers_combine(synth):
    # two Accept headers count as one list (RFC 9110)
    s = synth()
    out = raw(s.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/plain;q=0.5\r\n"
                      b"Accept: application/openmetrics-text\r\nConnection: close\r\n\r\n")
    assert OM_CT.encode() in out.split(b"\r\n\r\n")[0]


def test_paths_and_methods(synth):
    s = synth()
    status, headers, body = request(s.port, path="/")
    assert status == 200 and b"/metrics" in body
    for method in ("POST", "PUT", "DELETE", "OPTIONS", "PATCH", "BREW"):
        status, headers, _ = request(s.port, method=method)
        assert status == 405, method
        assert headers["Allow"] == "GET, HEAD"
    for path in ("/metric", "/metrics/", "/x/metrics", "/favicon.ico"):
        assert request(s.port, path=path)[0] == 404, path
    # the query string is not part of the path
    assert request(s.port, path="/metrics?format=x")[0] == 200
    status, headers, body = request(s.port, method="HEAD")
    assert status == 200 and body == b"" and headers["Content-Type"] == TEXT_CT
    assert int(headers["Content-Length"]) > 1000


def test_head_leaves_the_window_open_and_get_closes_it(synth):
    s = synth()
    request(s.port, method="HEAD")
    request(s.port, method="HEAD", headers={"Accept": "application/openmetrics-text"})
    request(s.port)
    request(s.port, path="/")
    request(s.port, method="POST")
    request(s.port)
    reads = [e for e in s.entries() if "rows" in e]
    assert [e["closed"] for e in reads] == [False, False, True, True]
    assert [e["window"] for e in reads] == [0, 0, 1, 2]
    st = s.stop()
    assert st["scrapes"] == 2 and st["requests"] == 6 and st["errors"] == 0


def test_keep_alive(synth):
    s = synth()
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5)
    for _ in range(5):
        c.request("GET", "/metrics")
        r = c.getresponse()
        assert r.status == 200 and r.getheader("Connection") != "close"
        r.read()
    sock = c.sock
    c.request("GET", "/")
    r = c.getresponse()
    r.read()
    assert c.sock is sock  # one connection for all of them
    c.close()


def test_garbage_and_oversized_requests(synth):
    s = synth("--conn-timeout", "1")
    cases = [
        b"\x00\xff\xfe garbage \r\n\r\n",
        b"GET\r\n\r\n",
        b"GET /metrics HTTP/9.9\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n",
        b"GET /" + b"m" * 40000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\nabc",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n" + b"x" * 100000,
    ]
    for data in cases:
        try:
            out = raw(s.port, data)
        except (ConnectionResetError, BrokenPipeError):
            out = b""  # closed on us: fine
        status = out.split(b" ", 2)[1] if out.startswith(b"HTTP/1.") else b""
        # an error status, or a plain close; never a scrape of a request we cannot read
        assert status == b"" or status[:1] in (b"4", b"5") or b"Content-Length: 99999" in data \
            or b"chunked" in data, (data[:60], out[:200])
        assert s.alive()
    assert timed_scrape(s.port) < 2
    assert s.stop()["errors"] == 0


def test_slow_and_stuck_clients_do_not_block_the_loop(synth):
    s = synth("--conn-timeout", "1")
    # partial requests that never end, and a slowloris that trickles a header
    stuck = []
    for _ in range(10):
        c = socket.create_connection(("127.0.0.1", s.port))
        c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        stuck.append(c)
    loris = socket.create_connection(("127.0.0.1", s.port))
    loris.sendall(b"GET /metrics HTTP/1.1\r\n")
    # pipelined requests from a client that never reads its answers
    greedy = socket.create_connection(("127.0.0.1", s.port))
    greedy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    greedy.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 200)
    # meanwhile, scrapes are served at once
    worst = 0.0
    t_end = time.monotonic() + 1.5
    while time.monotonic() < t_end:
        worst = max(worst, timed_scrape(s.port))
        loris.sendall(b"X")
        time.sleep(0.1)
    assert worst < 0.5, "a scrape waited %.3f s behind stuck clients" % worst
    # the stuck ones are closed after the inactivity timeout (1 s here)
    time.sleep(1.5)
    for c in stuck:
        c.settimeout(2)
        try:
            data = c.recv(65536)
            while data:
                data = c.recv(65536)
        except ConnectionResetError:
            pass
        c.close()
    loris.close()
    greedy.close()
    assert s.alive()
    assert timed_scrape(s.port) < 0.5
    assert s.stop()["errors"] == 0


def test_connection_limit_recovers(synth):
    s = synth("--conn-timeout", "1")
    idle = [socket.create_connection(("127.0.0.1", s.port)) for _ in range(40)]
    # 32 are served, the others wait in the backlog; the idle ones time out and a scrape
    # gets through within the timeout and a little
    t = timed_scrape(s.port, timeout=10)
    assert t < 3.5, t
    for c in idle:
        c.close()
    assert timed_scrape(s.port) < 0.5
    assert s.alive()


def test_no_busy_loop_with_idle_connections(synth):
    s = synth()
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5)
    c.request("GET", "/metrics")
    c.getresponse().read()
    # a kept-alive idle connection and a half-sent request, for 2 s
    half = socket.create_connection(("127.0.0.1", s.port))
    half.sendall(b"GET /met")
    time.sleep(2)
    st = s.stop()
    c.close()
    half.close()
    # a handful of wake-ups per request, none while idle (a spinning timer would be 1000s)
    assert st["wakeups"] < 30, st
    assert st["ticks"] > 100  # the loop's own clock went on (5 ms ticks)


@pytest.mark.parametrize("addr,reason", [
    ("127.0.0.1:99999", "port must be a number from 0 to 65535"),
    ("::1:80", "an IPv6 address needs brackets: [ADDRESS]:PORT"),
    ("nonsense", "port must be a number from 0 to 65535"),
])
def test_bad_listen_address(synth, addr, reason):
    with pytest.raises(RuntimeError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        synth("--listen", addr)


def test_busy_port(synth):
    first = synth()
    with pytest.raises(RuntimeError, match="address already in use"):
        synth("--listen", "127.0.0.1:%d" % first.port)
    with pytest.raises(RuntimeError, match="address already in use"):
        synth("--listen", str(first.port))
    assert timed_scrape(first.port) < 1
