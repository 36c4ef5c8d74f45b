# Line events of many shapes: the Occurrences must be what 0.61 counts.
@profile
def misc():
    a = 1; b = 2
    with open(__file__) as f:
        n = len(f.read())
    try:
        x = [1 / (i - 3) for i in range(5)]
    except ZeroDivisionError:
        x = None
    finally:
        y = 0
    total = 0
    while True:
        total += 1
        if total > 3:
            break
    vals = [v if v % 2 else -v for v in range(6)]
    def inner(k):
        return [k] * k
    r = [inner(j) for j in range(3)]
    class C:
        z = [q for q in range(2)]
    g = (lambda t: [t for _ in range(t)])(3)
    return a, b, n, x, y, total, vals, r, C, g


@profile
def delegating():
    yield from range(3)
    yield from sub()


def sub():
    yield 1
    yield 2


@profile
def sendthrow():
    def g():
        while True:
            try:
                v = yield
            except KeyError:
                v = -1
    it = g(); next(it)
    it.send(1); it.throw(KeyError)
    return it


@profile
def loop_one_line():
    s = 0
    for i in range(10): s += i
    while s > 0: s -= 7
    return s


misc()
list(delegating())
sendthrow()
loop_one_line()
