"""Child process of the RLIMIT_AS sweep: drives one operation of as_ops.py
to exhaustion at each of LEVELS address-space limits and reports, one JSON
line per level, how it ended and whether the process still works.

    python -X faulthandler -m tests.hostile.as_child OP [CAPI_EXT_PATH]

Per level: the soft RLIMIT_AS is set to the VmSize measured just before it
plus a headroom (64 KiB ... 128 MiB, geometric), the operation runs until it
raises (or reaches CAP units), then under the same limit the newest half of
what it made is dropped, gc runs, and a recovery (switch into a surviving
fiber, create and switch new ones, a small hub run) must work.  The limit
is then lifted (the hard limit stays unlimited), everything is dropped, the
recovery runs again and the live Fiber count must be back to its baseline.

A crash, abort or fatal error shows as the child's exit status and stderr
(faulthandler prints the stack); the parent (test_rlimit_as.py) judges the
JSON.  Calls as_ops, tests/capi/build.load, pycoro and the standard library.
"""
import collections
import ctypes
import gc
import itertools
import json
import resource
import sys
import traceback

import pycoro
from pycoro import Fiber

from tests.hostile import as_ops

LEVELS = [int((64 << 10) * 2048 ** (i / 19)) for i in range(20)]
CAP = 1_000_000
ALLOWED = (MemoryError, RecursionError, pycoro.FiberError)
UNLIMITED = resource.RLIM_INFINITY

try:
    _malloc_trim = ctypes.CDLL(None).malloc_trim
except (OSError, AttributeError):       # not glibc
    _malloc_trim = None


def vmsize():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) << 10
    raise RuntimeError("no VmSize")


def classify(e):
    """'ok', an allowed exception's class name, or 'bad:...'."""
    if e is None:
        return "ok"
    if isinstance(e, BaseExceptionGroup):
        kinds = sorted({classify(x) for x in e.exceptions})
        return kinds[0] if len(kinds) == 1 else "bad:mixed group %s" % kinds
    for c in ALLOWED:
        if isinstance(e, c):
            return c.__name__
    return "bad:%s" % type(e).__name__


def describe(e):
    if e is None:
        return ""
    if classify(e).startswith("bad"):
        return "".join(traceback.format_exception(e))[-2000:]
    return "%s: %s" % (type(e).__name__, str(e)[:100])


def live_fibers():
    return sum(1 for o in gc.get_objects() if isinstance(o, Fiber))


def recover(keep):
    for entry in reversed(keep):
        f = entry[0]
        if isinstance(f, Fiber) and f.started and not f.dead:
            assert f.switch() == ()
            break
    assert Fiber(lambda x: x + 1).switch(41) == 42
    g = Fiber(as_ops.parked_deep)
    assert g.switch(10) == ()
    assert g.switch() == ()
    assert isinstance(g.throw(), pycoro.FiberExit) and g.dead
    as_ops.hub_small()
    gc.collect()


def drop_half(keep):
    """Drop the newest half of `keep` (under the limit: even an int above 256
    or gc.collect()'s result may fail to allocate, hence inside attempt())."""
    for _ in itertools.repeat(None, len(keep) - len(keep) // 2):
        keep.pop()
    gc.collect()


def attempt(fn, *args):
    try:
        fn(*args)
    except BaseException as e:   # noqa: B902 - every outcome is classified
        return e
    return None


# sys.unraisablehook: records the exception's type and message only, in a
# full deque with a maxlen (which recycles its blocks); summarized between
# levels.  Keeping the exception itself would keep its __context__ chain:
# a destructor that fails under the limit (logging a task's error, say)
# raises MemoryError while handling MemoryError, three or four deep, and a
# few such entries hold all 16 of the MemoryError instances CPython keeps in
# reserve -- the next one cannot be made, and CPython 3.11.7 recurses in
# PyErr_NoMemory until the C stack overflows (SIGSEGV; older releases abort
# with "Cannot recover from MemoryErrors while normalizing exceptions").
# A hook that cannot even record (its frame or tuple cannot be allocated)
# makes CPython print both exceptions to stderr; nothing is kept then.
UNRAISABLE_MAX = 4
unraisable = collections.deque([None] * UNRAISABLE_MAX, maxlen=UNRAISABLE_MAX)


def record_unraisable(u, _append=unraisable.append):
    _append((u.exc_type, u.err_msg))


def take_unraisable():
    seen = ["%s (%s)" % (t.__name__, msg) for t, msg in filter(None, unraisable)]
    unraisable.extend([None] * UNRAISABLE_MAX)
    return seen


LIFT = (UNLIMITED, UNLIMITED)


def one_level(fill, teardown, headroom):
    # Everything under the limit stays inside a try in this frame: any
    # allocation may fail here, even an int or a frame push (on 3.11 a frame
    # that could only get a reserve data-stack chunk raises MemoryError at
    # its first instruction, which for a call would be outside its own try).
    keep = []
    err = rec_err = None
    n = -1
    limit = vmsize() + headroom
    resource.setrlimit(resource.RLIMIT_AS, (limit, UNLIMITED))
    try:
        fill(keep, CAP)
    except BaseException as e:   # noqa: B902 - every outcome is classified
        err = e
    try:
        n = len(keep)
        if teardown is not None:
            teardown()
        drop_half(keep)
        recover(keep)
    except BaseException as e:   # noqa: B902
        rec_err = e
    resource.setrlimit(resource.RLIMIT_AS, LIFT)
    if teardown is not None:
        teardown()
    out = {"headroom": headroom, "n": n,
           "outcome": classify(err), "detail": describe(err),
           "recovery_limited": classify(rec_err), "recovery_limited_detail": describe(rec_err)}
    err = rec_err = None
    keep.clear()
    gc.collect()
    out["recovery"] = classify(attempt(recover, keep))
    out["unraisable"] = take_unraisable()
    gc.collect()
    # The collector hands garbage suspended fibers to their thread, which
    # unwinds them (FiberExit) at its next switch: make one, then count.
    Fiber(int).switch()
    gc.collect()
    out["fibers"] = live_fibers()
    return out


def main():
    op = sys.argv[1]
    if len(sys.argv) > 2:
        from tests.capi import build
        as_ops.ext = build.load(sys.argv[2])
    fill, teardown = as_ops.OPS[op]
    # hub tasks cost several KiB each and their cancellation runs Python
    # code per task: a quarter of the headroom keeps each level short
    scale = 0.25 if op.startswith("hub") else 1.0
    sys.unraisablehook = record_unraisable
    # Warm up without a limit: imports, the hub, lazily built caches.
    first = attempt(fill, [], 20)
    if teardown is not None:
        teardown()
    assert first is None, describe(first)
    recover([])
    gc.collect()
    print(json.dumps({"baseline_fibers": live_fibers(), "vmsize": vmsize()}), flush=True)
    for headroom in LEVELS:
        if _malloc_trim is not None:
            _malloc_trim(0)
        print(json.dumps(one_level(fill, teardown, int(headroom * scale))), flush=True)
    print("DONE", flush=True)


if __name__ == "__main__":
    try:
        main()
    except BaseException:
        # An exception outside the measured operation: a harness defect or a
        # runtime one; print it with the limit lifted so that it is legible.
        resource.setrlimit(resource.RLIMIT_AS, (UNLIMITED, UNLIMITED))
        print("HARNESS", traceback.format_exc(), file=sys.stderr, flush=True)
        raise
