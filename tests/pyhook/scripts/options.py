import io
import sys
from memory_profiler import profile

buf = io.StringIO()


@profile(precision=4, stream=buf)
def four():
    a = [1] * (10 ** 6)
    return a


@profile
def default():
    b = [2] * (10 ** 6)
    return b


four()
four()
default()
sys.stdout.write("=== STREAM ===\n" + buf.getvalue())
