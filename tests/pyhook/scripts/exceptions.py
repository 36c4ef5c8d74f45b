# The report must appear although the script dies with a traceback.
@profile
def fails():
    a = [1] * (10 ** 6)
    raise ValueError("boom")


@profile
def catches():
    try:
        fails()
    except ValueError:
        b = [2] * (10 ** 6)
    return b


@profile
def dies():
    c = [3] * (10 ** 6)
    fails()
    return c


if __name__ == '__main__':
    kept = catches()
    dies()
