import time


@profile
def inner():
    x = [0] * (10 ** 6)
    time.sleep(0.01)
    return x


@profile
def outer():
    y = inner()
    with profile.timestamp("block1"):
        z = [1] * (2 * 10 ** 6)
    return y, z


@profile
def raises():
    raise KeyError("k")


if __name__ == '__main__':
    outer()
    try:
        raises()
    except KeyError:
        pass
    outer()
