"""Memory of suspended fibers (issue 19, docs/memory.md): freeing many
suspended fibers gives their memory back to the OS without the program
calling malloc_trim, and a fiber suspended 20 Python frames deep costs
little more than its frames and its saved C stack.  Each runs in a fresh
child process, so that nothing the test runner allocated counts.  Not
timed.  Calls pycoro and the standard library."""
import json
import subprocess
import sys
import sysconfig
import textwrap

import pytest

from tests.platform_support import needs_plain_allocator, needs_subprocess, scaled

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
needs_glibc_heap = pytest.mark.skipif(
    FREE_THREADED or not sys.platform.startswith("linux"),
    reason="RSS accounting of glibc's heap on Linux: a free-threaded build allocates "
           "everything from mimalloc, which keeps and purges pages on its own schedule "
           "(tests/hostile/test_scale.py explains)")

# The workload: `run` calls descend() DEPTH - 2 times, so DEPTH frames are
# the fiber's own when its deepest frame suspends in switch().
PRELUDE = """
import gc, json, sys
from pycoro import Fiber, current

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

def descend(k, sw):
    if k > 0:
        return descend(k - 1, sw)
    return sw()

def suspended(depth):
    sw = current().switch
    f = Fiber(lambda: descend(depth - 2, sw))
    f.switch()
    return f

def frame_bytes(frame):
    # each frame takes co_framesize slots of the data stack: locals, cells,
    # free variables, the value stack and 9 slots of the interpreter's own
    total = 0
    while frame is not None:
        c = frame.f_code
        total += 8 * (c.co_nlocals + len(c.co_cellvars) + len(c.co_freevars)
                      + c.co_stacksize + 9)
        frame = frame.f_back
    return total

DEPTH, N = int(sys.argv[1]), int(sys.argv[2])
for f in [suspended(DEPTH) for _ in range(256)]:    # warm-up: per-thread state
    f.switch()
f = None
gc.collect()
before = rss()
fs = [suspended(DEPTH) for _ in range(N)]
"""


def memory_test(fn):
    return needs_subprocess(needs_plain_allocator(needs_glibc_heap(fn)))


def run(body, depth, n):
    """Run PRELUDE (which leaves `n` fibers suspended at `depth` in `fs`,
    and the RSS before them in `before`), then `body`, in a child; its
    JSON output."""
    code = textwrap.dedent(PRELUDE) + textwrap.dedent(body)
    p = subprocess.run([sys.executable, "-X", "faulthandler", "-c", code, str(depth), str(n)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr[-3000:])
    return json.loads(p.stdout)


@memory_test
def test_freeing_100k_suspended_fibers_gives_the_memory_back():
    r = run("""
        peak = rss()
        del fs                   # each is unwound (FiberExit) and freed
        gc.collect()
        print(json.dumps({"before": before, "peak": peak, "after": rss()}))
        """, 5, scaled(100_000, 10_000))
    n = scaled(100_000, 10_000)
    print("\nRSS MiB: before %.1f, %d suspended %.1f, freed %.1f"
          % (r["before"] / 2**20, n, r["peak"] / 2**20, r["after"] / 2**20))
    assert r["peak"] - r["before"] > n * 1000       # they did exist (> 1000 B each)
    # Without giving the heap back (as before issue 19), 100,000 freed
    # fibers left 122 MiB resident over a 15 MiB start (about 30 MiB at the
    # pyver lanes' 25,000).  What stays is pymalloc's: it keeps an empty
    # 1 MiB arena for reuse and frees an arena only when all of it is free
    # (measured: +1.3 to +1.6 MiB on 3.11 at 100,000, +2.0 on 3.13 and +2.3
    # on 3.12 at 25,000, none of it in malloc's heap) -- a few arenas
    # whatever the count -- so 4 MiB plus 1% of what the fibers took is
    # allowed on top of the 10%.
    slack = r["before"] // 10 + 4 * 2**20 + (r["peak"] - r["before"]) // 100
    assert r["after"] - r["before"] <= slack


@memory_test
def test_a_fiber_suspended_20_frames_deep_costs_its_frames_and_stack_and_little_more():
    r = run("""
        gc.collect()
        per_fiber = (rss() - before) / N
        print(json.dumps({"per_fiber": per_fiber, "stack": fs[-1].stack_saved,
                          "frames": frame_bytes(fs[-1].frame)}))
        """, 20, scaled(20_000, 5_000))
    print("\nper fiber at depth 20: %.0f B RSS = %d B of frames + %d B of C stack + %.0f B"
          % (r["per_fiber"], r["frames"], r["stack"], r["per_fiber"] - r["frames"] - r["stack"]))
    assert r["per_fiber"] >= r["frames"]            # the frames are really there
    # The rest is the fiber object and record, the chunk and malloc headers
    # and the workload's closure (about 1,000 B on 3.11).  A data stack in
    # a chunk of its own page by page (greenlet, pycoro before: 6,600 B
    # here on 3.11) is far over.
    assert r["per_fiber"] <= r["frames"] + r["stack"] + 1536
