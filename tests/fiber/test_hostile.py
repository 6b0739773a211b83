"""Regression tests for the hostile cases of issue 14: a tracer that switches,
unbounded nesting of fiber starts, long chains of dead fibers, and a data
stack that cannot grow under a real memory limit."""
import subprocess
import sys
import textwrap

import pytest

import pycoro
from pycoro import Fiber, current

from tests.platform_support import needs_rlimit_as, needs_subprocess


@pytest.fixture
def tracer_off():
    yield
    pycoro.settrace(None)


def run_child(code, *, limits="", timeout=120):
    """Run `code` in a fresh interpreter, optionally under resource limits
    set first (a statement, e.g. setting RLIMIT_AS).  Returns (rc, out, err)."""
    src = "import resource\n" + textwrap.dedent(limits) + "\n" + textwrap.dedent(code)
    p = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


# ------------------------------------------------------------- the tracer

def test_tracer_that_starts_and_switches_fibers_runs_once_per_switch(tracer_off):
    seen = []

    def tracer(event, args):
        seen.append((event, args))
        inner = Fiber(lambda: "inner result")
        assert inner.switch() == "inner result"   # not traced: we are inside the tracer

    pycoro.settrace(tracer)
    f = Fiber(lambda: 7)
    assert f.switch() == 7
    pycoro.settrace(None)
    main = current()
    # exactly the two switches the program made: main -> f, f (ending) -> main
    assert [(e, a) for e, a in seen] == [("switch", (main, f)), ("switch", (f, main))]


def test_tracer_fiber_that_never_returns_leaves_tracing_on(tracer_off):
    main = current()
    seen = []
    parked = []

    def tracer(event, args):
        seen.append(args)
        if len(seen) == 1:
            # Start a fiber from inside the tracer that hands control straight
            # to main and is never resumed: the tracer call stays suspended.
            t = Fiber(lambda: main.switch())
            parked.append(t)
            t.switch()

    pycoro.settrace(tracer)
    f = Fiber(lambda: main.switch("from f"))
    # main -> f is traced (tracer runs in f, starts t, t switches to main:
    # untraced, it happened inside the tracer).  main gets () from t.
    assert f.switch() == ()
    # Later switches are traced again: the suspended tracer call belongs to
    # f, not to the thread.
    g = Fiber(lambda: 5)
    assert g.switch() == 5
    pycoro.settrace(None)
    assert seen[0] == (main, f)
    assert (main, g) in seen and (g, main) in seen
    for fiber in parked + [f]:
        fiber.throw()


def test_runaway_tracer_repro_from_issue_14(tracer_off):
    pycoro.settrace(lambda ev, args: Fiber(lambda: None).switch())
    assert Fiber(lambda: 1).switch() == 1
    pycoro.settrace(None)


def test_sys_settrace_inside_tracing_function_switching_fibers():
    # A sys.settrace function that switches fibers: the fiber it resumes runs
    # its own code traced, and tracing depth does not leak between fibers.
    main = current()
    events = []
    worker = Fiber(lambda: [main.switch(i) for i in range(3)])

    def trace(frame, event, arg):
        if event == "call" and frame.f_code.co_name == "target" and len(events) < 3:
            events.append(worker.switch())
        return None

    def target():
        return 1

    sys.settrace(trace)
    try:
        for _ in range(3):
            target()
    finally:
        sys.settrace(None)
    assert events == [0, 1, 2]
    assert worker.switch() == [(), (), ()]
    assert worker.dead


# ------------------------------------------------------------- nesting

def nest_forever(counter):
    counter[0] += 1
    Fiber(nest_forever).switch(counter)


def test_unbounded_nesting_raises_recursion_error_at_the_recursion_limit():
    counter = [0]
    limit = sys.getrecursionlimit()
    with pytest.raises(RecursionError):
        Fiber(nest_forever).switch(counter)
    # Each nested fiber's run() is one Python call deeper than the call that
    # started it, so the chain stops within the recursion limit.
    assert limit - 50 <= counter[0] <= limit
    # ... and everything still works afterwards.
    assert Fiber(lambda: 42).switch() == 42
    counter[0] = 0
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(old + 500)
    try:
        with pytest.raises(RecursionError):
            Fiber(nest_forever).switch(counter)
    finally:
        sys.setrecursionlimit(old)
    assert counter[0] > limit


def test_new_fiber_inherits_starter_depth_not_more():
    def depth():
        f = sys._getframe()
        n = 0
        while f is not None:
            n += 1
            f = f.f_back
        return n

    def recurse(n):
        if n == 0:
            return Fiber(probe).switch()
        return recurse(n - 1)

    def probe():
        # The fiber's own frames start fresh (f_back chain ends at probe)...
        assert sys._getframe().f_back is None
        # ... but it is counted from its starter's depth: it can go only
        # as deep as the rest of the limit.
        try:
            recurse_until_error(0)
        except RecursionError as e:
            return e.args

    def recurse_until_error(n):
        return recurse_until_error(n + 1)

    assert recurse(10) is not None
    assert depth() >= 1


# ------------------------------------------------------------- dealloc depth

@needs_subprocess
def test_dropping_a_long_parent_chain_does_not_overflow_the_c_stack():
    rc, out, err = run_child("""
        from pycoro import Fiber
        root = Fiber(lambda: None)
        cur = root
        for i in range(20000):
            cur = Fiber(lambda: None, cur)   # cur's parent is the previous one
        del root, cur                        # frees 20,001 fibers in a chain
        print("ok")
        """, limits="resource.setrlimit(resource.RLIMIT_STACK, (256 << 10, 256 << 10))")
    assert (rc, out.strip()) == (0, "ok"), err


# ------------------------------------------------------------- memory limit

@needs_rlimit_as
@pytest.mark.parametrize("depth", [5, 50, 200])
def test_exhausted_data_stack_raises_memory_error_not_system_error(depth):
    rc, out, err = run_child("""
        import gc, sys
        from pycoro import Fiber, current
        main = current()
        def rec(n):
            if n:
                return rec(n - 1)
            main.switch()
        fibers = []
        lim = 300 << 20
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
        try:
            while True:
                f = Fiber(rec)
                fibers.append(f)
                f.switch(%d)
        except MemoryError:
            outcome = "MemoryError"
        except BaseException as e:
            outcome = "%%s: %%s" %% (type(e).__name__, e)
        n = len(fibers)
        del f
        for _ in range(n // 2):       # drop half of them (each is unwound)
            fibers.pop()
        gc.collect()
        assert Fiber(lambda: 5).switch() == 5
        print(outcome, n > 1000)
        """ % depth)
    assert (rc, out.strip()) == (0, "MemoryError True"), err
