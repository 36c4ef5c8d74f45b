"""Write (JSON, to the file argv[1]) the files an IPython session of this interpreter loads from outside the
standard library: the top-level packages and modules, and the metadata folders of their
distributions (IPython asks importlib.metadata for some versions).

The IPython tests link them into a folder to run that pure-Python IPython under interpreters
that have none (no PyPI here): a real IPython, driven through its prompt. What is loaded is
read from sys.modules after starting the terminal application, because the packages' metadata
does not always list what they import.
"""
import importlib.metadata as md
import json
import os
import sys


def closure():
    from IPython.terminal.ipapp import TerminalIPythonApp
    app = TerminalIPythonApp.instance()
    app.initialize(['--simple-prompt', '--no-banner', '--quick',
                    '--TerminalInteractiveShell.term_title=False'])
    import IPython.core.magic  # noqa: F401 - what the extension uses
    import IPython.core.page  # noqa: F401
    paths = set()
    for name, mod in list(sys.modules.items()):
        f = getattr(mod, '__file__', None)
        if '.' in name or not f:
            continue
        f = os.path.realpath(f)
        parts = f.split(os.sep)
        if 'site-packages' not in parts and 'dist-packages' not in parts:
            continue        # the standard library, sitecustomize
        if not f.endswith('.py') or name == '_distutils_hack':
            continue        # compiled: of no use to another interpreter
        paths.add(os.path.dirname(f) if os.path.basename(f) == '__init__.py' else f)
    tops = {os.path.basename(p)[:-3] if p.endswith('.py') else os.path.basename(p)
            for p in paths}
    dists = md.packages_distributions() if hasattr(md, 'packages_distributions') else {}
    for top in tops:
        for dn in dists.get(top, ()):
            meta = getattr(md.distribution(dn), '_path', None)
            if meta is not None and os.path.exists(str(meta)):
                paths.add(str(meta))
    return sorted(paths)


if __name__ == '__main__':
    out = closure()
    with open(sys.argv[1], 'w') as f:
        json.dump(out, f)
