"""The RLIMIT_AS sweep (issue 14): every public operation, driven to
exhaustion at 20 address-space limits in a child process (as_child.py), ends
in an allowed outcome (ok, MemoryError, RecursionError, FiberError) -- never a
signal, abort, fatal error, SystemError, wrong result or lost exception --
and the process keeps working afterwards, with no fiber left behind.

All children start at once (a few at a time) when the first test asks for
its result; each test then judges one operation.  Calls as_child through a
subprocess, tests/capi/build for the C API extension.

The sweep takes minutes (21 children x 20 levels), so it runs once, in its
own CI lane (.ci/lanes/rlimit_sweep.sh sets PYCORO_SWEEP=1), not in every
lane that runs the whole suite."""
import collections
import json
import os
import subprocess
import sys
import threading

import pytest

from tests.capi import build
from tests.hostile import as_ops
from tests.platform_support import needs_rlimit_as

SWEEP = os.environ.get("PYCORO_SWEEP", "") not in ("", "0")
needs_sweep = pytest.mark.skipif(
    not SWEEP, reason="the RLIMIT_AS sweep runs in its own CI lane (.ci/run rlimit_sweep, "
                      "PYCORO_SWEEP=1): 21 children x 20 levels take minutes")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT = 60
Result = collections.namedtuple("Result", "rc out err")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    ext = build.build(tmp_path_factory.mktemp("capi_build"))
    results = {}
    todo = list(as_ops.OPS)
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                op = todo.pop(0)
            try:
                p = subprocess.run(
                    [sys.executable, "-X", "faulthandler", "-m", "tests.hostile.as_child",
                     op, ext],
                    cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT)
                results[op] = Result(p.returncode, p.stdout, p.stderr)
            except subprocess.TimeoutExpired as e:
                results[op] = Result("timeout", e.stdout or "", e.stderr or "")

    threads = [threading.Thread(target=worker) for _ in range(max(2, os.cpu_count() or 2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def levels_of(res):
    lines = res.out.splitlines()
    head = json.loads(lines[0]) if lines else {}
    levels = [json.loads(line) for line in lines[1:] if line.startswith("{")]
    return head, levels, bool(lines) and lines[-1] == "DONE"


ALLOWED = {"ok", "MemoryError", "RecursionError", "FiberError"}

# Defects the sweep finds today (CPython 3.11.7, x86-64).  Not strict: which
# allocation meets the limit first depends on the level and on address-space
# layout, so a given run may miss a defect; each was seen in repeated runs.
RECOVERY = ("after MemoryError and dropping half of what was made, the recovery under "
            "the same limit still raises MemoryError at some levels: what was dropped is "
            "fragmented heap or obmalloc arenas that stay mapped, and the recovery needs new "
            "blocks (chunks.c's malloc fallback for data-stack chunks made most levels "
            "recover: 'context' 6/20 -> 17/20)")
LOST_IN_UNWIND = ("SystemError 'error return without exception set': CPython 3.11's "
                  "take_ownership (Python/frame.c) calls PyErr_Clear() when, popping a frame "
                  "whose frame object a traceback keeps, it cannot allocate the caller's frame "
                  "object -- the exception in flight is lost (seen in gdb: PyErr_Clear from "
                  "take_ownership from _PyFrame_Clear at exit_unwind); a CPython defect that "
                  "fibers only make likelier, pycoro cannot intercept it")
FRAME_PUSH = ("SystemError from a failed frame push in 3.11's specialized calls "
              "(CALL_PY_EXACT_ARGS) once chunks.c's 8 reserve chunks are used up")
HUB_MEMERR = ("abort 'Cannot recover from MemoryErrors while normalizing exceptions' (or, "
              "on 3.11.7, SIGSEGV: PyErr_NoMemory recursing until the C stack overflows) once "
              "all 16 MemoryError instances CPython keeps in reserve are alive.  The crash seen "
              "2026-12-04 (hub_channel, level 9, 3 runs in 5) was the harness's own: its "
              "unraisable hook kept four exceptions, each with a __context__ chain of "
              "MemoryErrors from a failing log call (fixed: it keeps type and message only; "
              "0 crashes in 4 runs since; a task's Error now packs context chains of MemoryErrors "
              "too).  Kept as a possible outcome until sweeps on every lane show no crash")
HUB_SLOW = ("a child that does not finish within the timeout: every task dying of "
            "MemoryError logs 'exception was never retrieved' with its traceback, and under "
            "the limit each log costs tens of milliseconds (the hub's lost wake-ups that "
            "hung these children forever are fixed)")
HUB_LEAK = ("fibers left behind: when run() itself fails with MemoryError its suspended "
            "tasks are abandoned to the GC, and at some levels (hub_spawn: ~2,500 tasks at "
            "+2 MB x 0.25) gc never finalizes them: every task's callable (a bound method) "
            "keeps one reference that no GC-visible object holds and that outlives the task "
            "(seen 2026-12-03; throwing into each task unwinds it cleanly)")
KNOWN = {
    # seen once (2026-12-03, after the memory rework): at +128 MiB, 192,330
    # fibers, the recovery under the limit raised MemoryError
    "switch": RECOVERY,
    "new": RECOVERY,
    "frame": RECOVERY + "; " + FRAME_PUSH,
    "context": RECOVERY,
    "args": RECOVERY,
    "throw": LOST_IN_UNWIND,
    "capi_throw": LOST_IN_UNWIND,
    "capi_switch": RECOVERY,
    "hub_spawn": HUB_MEMERR + "; " + HUB_LEAK,
    "hub_channel": HUB_MEMERR + "; " + RECOVERY,
    "hub_group": HUB_MEMERR + "; " + RECOVERY,
    "hub_group_body": HUB_SLOW + "; " + RECOVERY,
    "hub_queue": HUB_SLOW + "; " + RECOVERY,
    "hub_sleep": HUB_SLOW,
    "hub_timeout": HUB_SLOW + "; " + RECOVERY,
    "hub_join": HUB_SLOW,
}


def params():
    for op in as_ops.OPS:
        if op in KNOWN:
            yield pytest.param(op, marks=pytest.mark.xfail(strict=False, reason=KNOWN[op]))
        else:
            yield op


@needs_sweep
@needs_rlimit_as
@pytest.mark.parametrize("op", list(params()))
def test_operation_under_rlimit_as(sweep, op):
    res = sweep[op]
    head, levels, done = levels_of(res)
    where = "after level %d" % len(levels)
    assert res.rc == 0 and done, "%s: exit %s %s\n%s" % (op, res.rc, where, res.err[-3000:])
    assert len(levels) == 20
    assert "Fatal Python error" not in res.err and "SystemError" not in res.err, res.err[-3000:]
    for lv in levels:
        ctx = "%s at +%d bytes (%d units): %s" % (op, lv["headroom"], lv["n"], lv)
        assert lv["outcome"] in ALLOWED, ctx
        # Under the limit, after dropping half of what was made.  A level
        # that made almost nothing freed almost nothing: there MemoryError
        # again is fair, anything else is not.
        if lv["n"] >= 64:
            assert lv["recovery_limited"] == "ok", ctx
        else:
            assert lv["recovery_limited"] in ("ok", "MemoryError"), ctx
        assert lv["recovery"] == "ok", ctx
        assert lv["fibers"] == head["baseline_fibers"], ctx
        # Only MemoryError may go unraisable (a destructor that cannot
        # unwind a dropped fiber under the limit has nobody to raise to).
        bad = [u for u in lv["unraisable"] if not u.startswith("MemoryError")]
        assert not bad, ctx
    # The sweep did reach exhaustion: every operation allocates as it goes.
    assert sum(lv["outcome"] == "MemoryError" for lv in levels) >= 18, levels
