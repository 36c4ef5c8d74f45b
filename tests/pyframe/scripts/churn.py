"""Code objects made, run and freed in a loop, for tests/pyframe/test_pyframe.py. Generation N
is a copy of one function whose file name is "genN.py"; CPython gives each copy the address of
the one freed before it (printed as "code ADDRESS"), and each allocates 4 MiB, which must be
charged to its own file. Protocol as scripts/lines.py."""
import sys
import types

MIB = 1 << 20


def template(n):
    return bytearray(n)  # @ALLOC


def main():
    print("ready", flush=True)
    sys.stdin.readline()
    keep = []
    for i in range(24):
        code = template.__code__.replace(co_filename="gen%d.py" % i)
        g = types.FunctionType(code, {"__builtins__": __builtins__})
        print("code %d" % id(code), flush=True)
        keep.append(g(4 * MIB))  # kept: no free event between generations
        del g, code
    print("done 0 0", flush=True)
    sys.stdin.read()


main()
