"""Regression tests for the hostile cases of issue 14: a tracer that switches,
unbounded nesting of fiber starts, long chains of dead fibers, and a data
stack that cannot grow under a real memory limit."""
import subprocess
import sys
import textwrap

import pytest

import pycoro
from pycoro import Fiber, current

from tests.platform_support import needs_rlimit_as, needs_subprocess, stack_limit_before_exec


@pytest.fixture
def tracer_off():
    yield
    pycoro.settrace(None)


def run_child(code, *, limits="", stack_kib=None, timeout=120):
    """Run `code` in a fresh interpreter, optionally under resource limits
    set first (a statement, e.g. setting RLIMIT_AS) and with RLIMIT_STACK set
    before the interpreter starts (stack_kib; see stack_limit_before_exec).
    Returns (rc, out, err)."""
    src = "import resource\n" + textwrap.dedent(limits) + "\n" + textwrap.dedent(code)
    p = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, timeout=timeout,
                       preexec_fn=stack_limit_before_exec(stack_kib) if stack_kib else None)
    return p.returncode, p.stdout, p.stderr


# ------------------------------------------------------------- the tracer

def test_tracer_traces_the_switches_it_makes_itself(tracer_off):
    # greenlet's rule: every switch is traced, those made inside the tracer
    # included (the tracer runs inside itself).
    seen = []

    def tracer(event, args):
        seen.append((event, args))
        if len(seen) == 1:
            inner.append(Fiber(lambda: "inner result"))
            assert inner[0].switch() == "inner result"

    inner = []
    pycoro.settrace(tracer)
    f = Fiber(lambda: 7)
    assert f.switch() == 7
    pycoro.settrace(None)
    main, g = current(), inner[0]
    assert seen == [("switch", (main, f)), ("switch", (f, g)),
                    ("switch", (g, f)), ("switch", (f, main))]


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
    # main -> f is traced (the tracer runs in f and starts t, whose start
    # and switch to main are traced too).  main gets () from t.
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
    # A tracer that starts a fiber on every switch nests without end: the
    # nesting is a recursion, bounded by the recursion limit.  The
    # RecursionError removes the tracer and reaches the switch that began it.
    pycoro.settrace(lambda ev, args: Fiber(lambda: None).switch())
    with pytest.raises(RecursionError):
        Fiber(lambda: 1).switch()
    assert pycoro.gettrace() is None
    assert Fiber(lambda: 1).switch() == 1
    pycoro.settrace(lambda ev, args: None)     # tracing still works
    assert Fiber(lambda: 2).switch() == 2


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
        """, stack_kib=256)
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
        # still under the limit: a fiber that needs a new 16 KiB data-stack
        # chunk, which the dropped fibers' memory (malloc heap) must provide
        def deep(n):
            return deep(n - 1) if n else 7
        assert Fiber(deep).switch(100) == 7
        print(outcome, n > 1000)
        """ % depth)
    assert (rc, out.strip()) == (0, "MemoryError True"), err


@needs_rlimit_as
def test_memory_freed_to_the_heap_serves_a_new_fiber_under_the_limit():
    # After a MemoryError, what a program drops goes back to malloc's heap,
    # which does not lower the address space RLIMIT_AS counts: a new fiber
    # whose frames need a fresh 16 KiB data-stack chunk (CPython maps those
    # with mmap) could not start, however much was dropped.  chunks.c falls
    # back to malloc then.
    rc, out, err = run_child("""
        import gc
        from pycoro import Fiber
        def vmsize():
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmSize:"):
                        return int(line.split()[1]) << 10
        lim = vmsize() + (64 << 20)
        resource.setrlimit(resource.RLIMIT_AS, (lim, resource.RLIM_INFINITY))
        blocks = []
        try:
            while True:
                blocks.append(bytearray(4000))      # malloc'd, not arena memory
        except MemoryError:
            pass
        n = len(blocks)
        for i in range(n // 4, 3 * n // 4):
            blocks[i] = None                        # the middle: the heap cannot shrink
        gc.collect()
        def deep(n):
            return deep(n - 1) if n else 7
        print(Fiber(deep).switch(100), n > 1000)
        """)
    assert (rc, out.split()) == (0, ["7", "True"]), err


# ------------------------------------------------------------- switching inside a collection

def test_fiber_collected_with_an_object_with_finalizer_does_not_crash():
    # greenlet's test_finalizer_crash: the collector finalizes a suspended
    # fiber whose unwinding frees an object the same collection holds.  The
    # collector's working lists live in its own C frames: unwinding the
    # fiber there would overwrite them.  It is unwound as the collection
    # ends, before gc.collect() returns.
    import gc
    events = []

    class WithFinalizer:
        def __del__(self):
            events.append("__del__")

    parent = current()

    def body():
        current().obj = WithFinalizer()
        try:
            parent.switch()
        except pycoro.FiberExit:
            events.append("FiberExit")
        finally:
            del current().obj

    for _ in range(20):
        events.clear()
        f = Fiber(body)
        f.cycle = [f]
        f.switch()
        del f
        gc.collect()
        # both ran (in the collector's order), exactly once
        assert sorted(events) == ["FiberExit", "__del__"]
    assert Fiber(lambda: 3).switch() == 3


def test_switch_from_a_finalizer_run_by_the_collector_is_fiber_error():
    import gc
    seen = []
    target = Fiber(lambda: "ran")

    class SwitchesInDel:
        def __del__(self):
            try:
                seen.append(target.switch())
            except pycoro.FiberError as e:
                seen.append(str(e))

    x = SwitchesInDel()
    x.cycle = x
    del x
    gc.collect()
    assert len(seen) == 1 and "garbage collector" in seen[0]
    assert target.switch() == "ran"          # outside a collection it runs
