"""python -m memory_profiler [options] script.py|module [args...]"""
import argparse
import sys

from . import (LineProfiler, TimeStamper, __version__, _BACKENDS, _find_script,
               exec_with_profiler, run_module_with_profiler, show_results)

_USAGE = "python -m memory_profiler script_file.py"


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # One line, not argparse's usage block: scripts grep for it.
        sys.stderr.write("memory_profiler: error: %s (see -h)\n" % message)
        sys.exit(2)


def _parser():
    p = _Parser(usage=_USAGE, prog="python -m memory_profiler")
    p.add_argument('--version', action='version', version=__version__)
    p.add_argument('--pdb-mmem', dest='max_mem', metavar='MAXMEM', type=float,
                   help='step into the debugger when memory exceeds MAXMEM')
    p.add_argument('--precision', dest='precision', type=int, default=3,
                   help='precision of memory output in number of significant digits')
    p.add_argument('-o', dest='out_filename', type=str, default=None,
                   help='path to a file where results will be written')
    p.add_argument('--timestamp', dest='timestamp', default=False, action='store_true',
                   help='print timestamp instead of memory measurement for decorated functions')
    p.add_argument('--include-children', dest='include_children', default=False,
                   action='store_true', help='also include memory used by child processes')
    p.add_argument('--backend', dest='backend', type=str, choices=list(_BACKENDS),
                   default='psutil', help='backend using for getting memory info')
    p.add_argument('program', nargs=argparse.REMAINDER,
                   help='python script or module followed by command line arguments to run')
    return p


def _pdb_hook(max_mem):
    """--pdb-mmem: stop in the frame whose line took memory over the limit, before its next
    line runs (0.61 stops one event later and steps the frame back two lines)."""
    def hook(frame, mib, event, arg, line):
        import linecache
        sys.stdout.write('Current memory {0:.2f} MiB exceeded the maximum of {1:.2f} MiB\n'
                         .format(mib, max_mem))
        sys.stdout.write('Stepping into the debugger \n')
        code = frame.f_code
        src = linecache.getline(code.co_filename, line).strip()
        sys.stdout.write('The limit was crossed during line {0} of {1}{2}\n'.format(
            line, code.co_filename, ': ' + src if src else ''))
        import pdb
        p = pdb.Pdb()
        p.set_trace(frame)
        # set_trace stops at the next event; this one is already here.
        p.trace_dispatch(frame, event, arg)
    return hook


def main():
    args = _parser().parse_args()
    if not args.program:
        print("A program to run must be provided. Use -h for help")
        sys.exit(1)
    if args.precision < 0 or args.precision > 100:
        _Parser().error("--precision must be between 0 and 100, not %d" % args.precision)
    if args.out_filename is not None:
        # Fail before running the program, not after.
        try:
            open(args.out_filename, "a").close()
        except OSError as e:
            _Parser().error("cannot open '%s': %s" % (args.out_filename, e.strerror))

    target, script_args = args.program[0], args.program[1:]
    if args.timestamp:
        prof = TimeStamper(args.backend, include_children=args.include_children)
    else:
        # include_children is honoured here too (0.61 passes it to --timestamp only)
        prof = LineProfiler(max_mem=args.max_mem, backend=args.backend,
                            include_children=args.include_children)
        if args.max_mem is not None:
            prof.on_max_mem = _pdb_hook(args.max_mem)

    try:
        if target.endswith('.py'):
            exec_with_profiler(_find_script(target), prof, args.backend, script_args)
        else:
            run_module_with_profiler(target, prof, args.backend, script_args)
    finally:
        # As 0.61, the debugger mode has no report: the debugger's own
        # allocations would be charged to the line it stopped at.
        if args.timestamp or args.max_mem is None:
            _report(args, prof)


def _report(args, prof):
    out = open(args.out_filename, "a") if args.out_filename is not None else sys.stdout
    try:
        if args.timestamp:
            prof.show_results(stream=out)
        else:
            show_results(prof, precision=args.precision, stream=out)
    finally:
        if out is not sys.stdout:
            out.close()


if __name__ == '__main__':
    main()
