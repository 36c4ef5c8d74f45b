# Comprehensions, generator expressions, loops on one line, generators, recursion:
# the Occurrences must be what 0.61 (sys.settrace) counts on the same interpreter.



def helper(n):
    return [0] * n


@profile
def comps():
    a = [x for x in range(100)]
    b = sum(x for x in range(50))
    d = {k: k for k in range(10)}
    s = {k for k in range(7)}
    f = lambda y: y + 1
    c = [f(i) for i in range(5)]
    for i in range(3): z = i
    n = 0
    while n < 4:
        n += 1
    nested = [[j for j in range(3)] for i in range(4)]
    try:
        raise ValueError("x")
    except ValueError:
        e = 1
    h = helper(10)
    return a, b, d, s, c, z, nested, e, h


@profile
def gen(n):
    for i in range(n):
        yield i
    yield -1


@profile
def consume():
    out = []
    for v in gen(3):
        out.append(v)
    g = (i * 2 for i in gen(2))
    out.extend(g)
    return out


@profile
def oneliner(): return 1


@profile
def rec(n):
    if n == 0:
        return 0
    return rec(n - 1) + 1


comps()
comps()
consume()
oneliner()
rec(3)
