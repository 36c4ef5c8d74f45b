# A line calling another profiled function is charged with what the call
# left behind (38.147 MiB), not with the process total; the callee's
# transient 15 MiB shows in the caller's Mem usage.
@profile
def inner():
    x = [0] * (5 * 10 ** 6)
    y = [0] * (2 * 10 ** 6)
    del y
    return x


@profile
def outer():
    a = [1] * (10 ** 6)
    n = inner()
    del a
    return n


if __name__ == '__main__':
    outer()
