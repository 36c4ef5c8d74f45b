import sys


@profile
def modfunc():
    a = [1] * (10 ** 6)
    return a


if __name__ == '__main__':
    print("ARGV", sys.argv[1:])
    modfunc()
