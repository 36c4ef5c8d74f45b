"""For `mprof run --lines`: memory taken by a module body at import, then an exit at once.

The module body's code object is freed as soon as its import is done and the process exits
right after: its frames can only be named from what BPF copied when it first saw them. The
half second first lets mprof attach (it tries every millisecond once the interpreter is up),
so that the window covers the whole import.
"""
import os
import sys
import time

time.sleep(0.5)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import import_body_mod  # @IMPORT (noqa: E402, F401)
