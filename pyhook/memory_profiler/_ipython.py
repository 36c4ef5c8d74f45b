"""The IPython extension: %mprun / %%mprun and %memit / %%memit.

`%load_ext memory_profiler` calls load_ipython_extension(). The magics take
memory_profiler 0.61's options and print its output, with these differences:
they need no distutils (0.61's import it, which fails on 3.12+); %memit's
peak is the kernel's high-water mark of the statement (0.61 samples every
interval and misses short peaks); %mprun also profiles functions defined at
the prompt (their source is in IPython's line cache); in a Jupyter kernel its
report is printed into the cell's output (0.61 sends it to the pager, which a
notebook run headless never shows).
"""
import builtins
import gc
import io

try:
    from IPython.core.magic import Magics, line_cell_magic, magics_class
except ImportError:  # no IPython: the class still exists, as in 0.61
    Magics = object

    def line_cell_magic(func):
        return func

    def magics_class(cls):
        return cls


@magics_class
class MemoryProfilerMagics(Magics):
    """%mprun (line-by-line report of chosen functions) and %memit (peak of a statement)."""

    @line_cell_magic
    def mprun(self, parameter_s='', cell=None):
        """Run a statement under the line-by-line memory profiler.

        Usage, in line mode:
          %mprun -f func1 -f func2 <statement>

        Usage, in cell mode:
          %%mprun -f func1 -f func2 [statement]
          code...

        In cell mode the cell's lines are appended to the statement. Options:

        -f <function>: profile this function (any expression giving a function
        or method; repeat -f for several). Functions defined at the prompt work
        too.

        -T <filename>: also write the report to this text file.

        -r: return the LineProfiler after the run.

        -c: add the memory of child processes.
        """
        from IPython.core.error import UsageError
        from . import LineProfiler

        opts, arg_str = self.parse_options(parameter_s, 'rf:T:c', list_all=True, posix=False)
        if cell is not None:
            arg_str += '\n' + cell
        global_ns = self.shell.user_global_ns
        local_ns = self.shell.user_ns
        funcs = []
        for name in getattr(opts, 'f', []):
            try:
                funcs.append(eval(name, global_ns, local_ns))
            except Exception as e:
                raise UsageError('Could not find function %r.\n%s: %s'
                                 % (name, e.__class__.__name__, e))
        prof = LineProfiler(include_children='c' in opts)
        for func in funcs:
            prof(func)
        # @profile inside the statement uses this profiler, as in 0.61.
        missing = object()
        saved = builtins.__dict__.get('profile', missing)
        builtins.__dict__['profile'] = prof
        message = ''
        try:
            prof.runctx(arg_str, global_ns, local_ns)
        except SystemExit:
            message = '*** SystemExit exception caught in code being profiled.'
        except KeyboardInterrupt:
            message = '*** KeyboardInterrupt exception caught in code being profiled.'
        finally:
            if saved is missing:
                builtins.__dict__.pop('profile', None)
            else:
                builtins.__dict__['profile'] = saved
        buf = io.StringIO()
        prof.show_results(stream=buf)
        output = buf.getvalue().rstrip()
        self._show(output)
        if message:
            print(message)
        text_file = getattr(opts, 'T', [''])[0]
        if text_file:
            with open(text_file, 'w') as f:
                f.write(output)
            print('\n*** Profile printout saved to text file %s. %s' % (text_file, message))
        return prof if 'r' in opts else None

    def _show(self, text):
        if getattr(self.shell, 'kernel', None) is not None:
            # A kernel's pager is a payload that headless runs (nbconvert,
            # papermill) drop: print into the cell's output instead.
            print(text)
            return
        from IPython.core.page import page
        page(text)

    @line_cell_magic
    def memit(self, line='', cell=None):
        """Measure the peak memory of a statement.

        Usage, in line mode:
          %memit [-r<R>] [-t<T>] [-i<I>] [-c] [-o] [-q] statement

        Usage, in cell mode:
          %%memit [-r<R>] [-t<T>] [-i<I>] [-c] [-o] [-q] setup_code
          code...

        In cell mode the first line is run first and not measured; the cell is
        measured. Prints 'peak memory: X MiB, increment: Y MiB' (increment:
        the peak over the memory before the statement). Options:

        -r<R>: run it R times (default 1) and report the highest peak.
        -t<T>: timeout in seconds (kept in the result; the statement runs once).
        -i<I>: sampling interval in seconds (default 0.1); the peak is the
            kernel's high-water mark, so it does not depend on it.
        -c: add the memory of child processes.
        -o: return a MemitResult.
        -q: print nothing.
        """
        from . import MemitResult, _func_exec, memory_usage

        opts, stmt = self.parse_options(line, 'r:t:i:coq', posix=False, strict=False)
        if cell is None:
            setup = 'pass'
        else:
            setup, stmt = stmt, cell
        repeat = max(1, int(getattr(opts, 'r', 1)))
        timeout = int(getattr(opts, 't', 0))
        if timeout <= 0:
            timeout = None
        interval = float(getattr(opts, 'i', 0.1))
        include_children = 'c' in opts
        # A collection first gives steadier baselines (0.61 does it too).
        gc.collect()
        ns = self.shell.user_ns
        _func_exec(setup, ns)
        baseline = memory_usage()[0]
        mem_usage = [memory_usage((_func_exec, (stmt, ns)), timeout=timeout, interval=interval,
                                  max_usage=True, max_iterations=1,
                                  include_children=include_children)
                     for _ in range(repeat)]
        result = MemitResult(mem_usage, baseline, repeat, timeout, interval, include_children)
        if 'q' not in opts:
            print(result)
        if 'o' in opts:
            return result

    @classmethod
    def register_magics(cls, ip):
        ip.register_magics(cls)


def load_ipython_extension(ip):
    """Called by `%load_ext memory_profiler`: registers %mprun and %memit."""
    MemoryProfilerMagics.register_magics(ip)
