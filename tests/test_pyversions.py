"""The behaviours that change with the CPython version (csrc/binding/pystate.c).

Each test exercises a piece of per-thread interpreter state a fiber carries,
or a view of a suspended fiber's frames, where a version-specific mistake
shows up as a crash or a wrong answer:

* 3.12+ link a C-stack "entry frame" into the frame chain wherever C calls
  Python; a suspended fiber's C stack is elsewhere, so `f_back`, traceback
  walks and the GC must never follow such a link while it is suspended.
* 3.12+ trace and profile through sys.monitoring; 3.11 through a per-cframe
  `use_tracing` flag.
* 3.12/3.13 count Python and C recursion separately; 3.14 checks the C
  stack by address.
"""
import asyncio
import gc
import subprocess
import sys
import textwrap
import traceback

import pytest

from pycoro import Fiber, current
from tests.platform_support import needs_subprocess, scaled

PY312 = sys.version_info >= (3, 12)


def frame_names(frame):
    names = []
    while frame is not None:
        names.append(frame.f_code.co_name)
        frame = frame.f_back
    return names


def churn_c_stack(depth=60):
    """Run a fiber that re-enters the interpreter from C many times (so the
    C stack below the caller is overwritten with entry frames) and leave it
    suspended there."""
    main = current()

    def nest(n):
        if n == 0:
            main.switch("deep")
            return 0
        # sorted() calls the key function from C: one entry frame per level
        return sorted([n], key=lambda x: nest(n - 1))[0]

    f = Fiber(nest)
    assert f.switch(depth) == "deep"
    return f


# ---------------------------------------------------------------------------
# f_back, fiber.frame and tracebacks across suspended frames


def test_f_back_of_suspended_fiber_with_c_reentry():
    main = current()

    def leaf():
        main.switch("parked")
        return "leaf"

    def through_c():
        # leaf runs under a key function called by sorted(): C in between
        return sorted([1], key=lambda x: leaf())

    def run():
        return through_c()

    f = Fiber(run)
    assert f.switch() == "parked"
    other = churn_c_stack()       # overwrite the C stack f left behind
    for _ in range(3):
        names = frame_names(f.frame)
        assert names == ["leaf", "<lambda>", "through_c", "run"]
    gc.collect()
    assert frame_names(f.frame) == ["leaf", "<lambda>", "through_c", "run"]
    assert f.switch() == [1]          # sorted() returns the items
    assert f.dead
    other.throw()
    assert other.dead


def test_frame_object_kept_from_inside_a_fiber():
    # A frame object taken while the fiber ran, read while it is suspended
    # and another fiber has used the C stack.
    main = current()
    kept = []

    def inner():
        kept.append(sys._getframe())
        main.switch()
        return kept[0].f_back.f_code.co_name

    def run():
        return list(map(lambda _: inner(), [0]))[0]

    f = Fiber(run)
    f.switch()
    other = churn_c_stack()
    assert frame_names(kept[0]) == ["inner", "<lambda>", "run"]
    stack = traceback.extract_stack(kept[0])
    assert [fs.name for fs in stack] == ["run", "<lambda>", "inner"]
    assert f.switch() == "<lambda>"
    other.throw()


def test_main_frames_seen_from_a_fiber():
    # The main fiber is suspended while a fiber runs: its frames too.
    kept = sys._getframe()

    def run():
        churn = churn_c_stack(20)
        names = frame_names(kept)
        churn.throw()
        return names

    names = Fiber(run).switch()
    assert names[0] == "test_main_frames_seen_from_a_fiber"
    assert names == frame_names(sys._getframe())


def test_traceback_through_fiber_frames():
    main = current()

    def fail():
        main.switch("before")
        raise KeyError("boom")

    def middle():
        return sorted([0], key=lambda x: fail())

    f = Fiber(middle)
    assert f.switch() == "before"
    churn = churn_c_stack()
    with pytest.raises(KeyError) as info:
        f.switch()
    names = [e.name for e in traceback.extract_tb(info.value.__traceback__)]
    assert names[-3:] == ["middle", "<lambda>", "fail"]
    text = "".join(traceback.format_exception(info.value))
    assert "KeyError: 'boom'" in text
    # the frames of the traceback are done; walking them is still fine
    tb = info.value.__traceback__
    while tb.tb_next:
        tb = tb.tb_next
    assert frame_names(tb.tb_frame)[:3] == ["fail", "<lambda>", "middle"]
    churn.throw()


def test_traceback_captured_inside_suspended_fiber():
    main = current()

    def run():
        try:
            sorted([0], key=lambda x: 1 / 0)
        except ZeroDivisionError as e:
            main.switch(e)
        return "done"

    f = Fiber(run)
    exc = f.switch()
    churn = churn_c_stack()
    tb = exc.__traceback__
    assert [e.name for e in traceback.extract_tb(tb)] == ["run", "<lambda>"]
    # tb_frame of the first entry is `run`, still executing (suspended)
    assert frame_names(tb.tb_frame) == ["run"]
    traceback.print_stack(tb.tb_next.tb_frame, file=_Sink())
    assert f.switch() == "done"
    churn.throw()


def test_throw_into_suspended_fiber_keeps_traceback():
    main = current()

    def run():
        try:
            sorted([0], key=lambda x: main.switch("in"))
        except ValueError as e:
            return [fs.name for fs in traceback.extract_tb(e.__traceback__)]

    f = Fiber(run)
    assert f.switch() == "in"
    churn = churn_c_stack()
    names = f.throw(ValueError("x"))
    assert names[0] == "run" and names[-1] == "<lambda>"
    churn.throw()


class _Sink:
    def write(self, s):
        pass


# ---------------------------------------------------------------------------
# sys._getframe() inside fibers


def test_getframe_inside_fibers():
    main = current()
    seen = {}

    def a():
        return b()

    def b():
        f0 = sys._getframe()
        seen["before"] = frame_names(f0)
        main.switch()
        seen["after"] = frame_names(sys._getframe())
        seen["caller"] = sys._getframe(1).f_code.co_name
        with pytest.raises(ValueError):
            sys._getframe(50)
        return f0 is sys._getframe()

    f1, f2 = Fiber(a), Fiber(a)
    f1.switch()
    f2.switch()
    here = frame_names(sys._getframe())
    assert f1.switch() is True
    assert seen == {"before": ["b", "a"], "after": ["b", "a"], "caller": "a"}
    assert f2.switch() is True
    assert frame_names(sys._getframe()) == here


def test_fiber_frame_attribute_per_state():
    main = current()

    def run():
        main.switch()

    f = Fiber(run)
    assert f.frame is None                # new
    f.switch()
    assert f.frame.f_code.co_name == "run"
    assert f.frame is f.frame             # the same frame object each time
    f.switch()
    assert f.frame is None                # dead


# ---------------------------------------------------------------------------
# tracing and profiling while switching


def _ping_pong(n):
    main = current()

    def worker(x):
        while True:
            x = main.switch(x + 1)

    w = Fiber(worker)
    v = 0
    for _ in range(n):
        v = w.switch(v)
    w.throw()
    return v


def test_settrace_active_while_switching():
    events = []

    def tracer(frame, event, arg):
        events.append((event, frame.f_code.co_name))
        return tracer

    sys.settrace(tracer)
    try:
        assert _ping_pong(50) == 50
    finally:
        sys.settrace(None)
    assert ("call", "worker") in events
    assert ("line", "worker") in events
    assert sum(1 for e in events if e == ("line", "worker")) >= 50
    n = len(events)
    assert _ping_pong(10) == 10
    assert len(events) == n            # nothing traced once it is removed


def test_settrace_set_inside_a_fiber_follows_the_thread():
    main = current()
    events = []

    def tracer(frame, event, arg):
        if event == "call":
            events.append(frame.f_code.co_name)
        return None

    def in_main_while_traced():
        return 1

    def run():
        sys.settrace(tracer)
        main.switch()
        sys.settrace(None)

    f = Fiber(run)
    f.switch()
    try:
        in_main_while_traced()
    finally:
        f.switch()
    sys.settrace(None)
    assert "in_main_while_traced" in events


def test_setprofile_active_while_switching():
    events = []

    def profiler(frame, event, arg):
        events.append((event, getattr(arg, "__name__", frame.f_code.co_name)))

    sys.setprofile(profiler)
    try:
        assert _ping_pong(30) == 30
    finally:
        sys.setprofile(None)
    assert ("call", "worker") in events
    assert ("c_call", "switch") in events
    assert sum(1 for e in events if e == ("c_call", "switch")) >= 30


def test_tracer_that_switches():
    # A trace function that itself switches fibers on every call event.
    main = current()
    log = []

    def bystander():
        while True:
            log.append("b")
            main.switch()

    b = Fiber(bystander)

    def tracer(frame, event, arg):
        if event == "call" and frame.f_code.co_name == "traced":
            b.switch()
        return None

    def traced(i):
        return i * 2

    sys.settrace(tracer)
    try:
        out = [traced(i) for i in range(5)]
    finally:
        sys.settrace(None)
    assert out == [0, 2, 4, 6, 8]
    assert log == ["b"] * 5
    b.throw()


@pytest.mark.skipif(not PY312, reason="sys.monitoring exists from CPython 3.12")
def test_sys_monitoring_active_while_switching():
    mon = sys.monitoring
    tool = None
    for candidate in (mon.PROFILER_ID, mon.OPTIMIZER_ID, 3, 4):
        if mon.get_tool(candidate) is None:
            tool = candidate
            break
    assert tool is not None, "no free sys.monitoring tool id"
    mon.use_tool_id(tool, "pycoro-test")
    seen = []
    E = mon.events

    def on_start(code, offset):
        seen.append(("start", code.co_name))

    def on_return(code, offset, value):
        seen.append(("return", code.co_name))

    def on_line(code, line):
        if code.co_name == "worker":
            seen.append(("line", code.co_name))

    def on_call(code, offset, callable, arg0):
        if getattr(callable, "__name__", None) == "switch":
            seen.append(("call", "switch"))

    try:
        mon.register_callback(tool, E.PY_START, on_start)
        mon.register_callback(tool, E.PY_RETURN, on_return)
        mon.register_callback(tool, E.LINE, on_line)
        mon.register_callback(tool, E.CALL, on_call)
        mon.set_events(tool, E.PY_START | E.PY_RETURN | E.LINE | E.CALL)
        assert _ping_pong(40) == 40
        # a generator and a coroutine suspended across switches, monitored
        assert _generator_across_switches() == [0, 1, 2, 3]
    finally:
        mon.set_events(tool, 0)
        for ev in (E.PY_START, E.PY_RETURN, E.LINE, E.CALL):
            mon.register_callback(tool, ev, None)
        mon.free_tool_id(tool)
    assert ("start", "worker") in seen
    assert sum(1 for e in seen if e == ("line", "worker")) >= 40
    assert sum(1 for e in seen if e == ("call", "switch")) >= 40
    n = len(seen)
    _ping_pong(5)
    assert len(seen) == n


# ---------------------------------------------------------------------------
# generators and coroutines suspended across switches


def _generator_across_switches():
    main = current()

    def gen():
        for i in range(4):
            main.switch(("gen", i))   # the generator is running: switch out
            yield i

    def run():
        return list(gen())

    f = Fiber(run)
    got = []
    v = f.switch()
    while not f.dead:
        got.append(v)
        v = f.switch()
    assert got == [("gen", i) for i in range(4)]
    return v


def test_generator_suspended_across_switches():
    assert _generator_across_switches() == [0, 1, 2, 3]


def test_running_generator_of_suspended_fiber():
    main = current()

    def gen():
        main.switch("inside")
        yield 1

    g = gen()
    f = Fiber(lambda: next(g))
    assert f.switch() == "inside"
    churn = churn_c_stack()
    with pytest.raises(ValueError, match="already executing"):
        next(g)
    assert g.gi_running
    assert frame_names(g.gi_frame)[0] == "gen"
    assert f.switch() == 1
    assert not g.gi_running
    churn.throw()


def test_generators_shared_between_fibers():
    # One generator advanced alternately from two fibers and main.
    main = current()

    def counter():
        n = 0
        while True:
            n += 1
            yield n

    g = counter()

    def run():
        while True:
            main.switch(next(g))

    a, b = Fiber(run), Fiber(run)
    got = [a.switch(), b.switch(), next(g), a.switch(), b.switch()]
    assert got == [1, 2, 3, 4, 5]
    a.throw()
    b.throw()


class Suspend:
    """An awaitable that yields once to whoever drives the coroutine."""

    def __await__(self):
        return (yield "suspended")


def test_coroutine_driven_inside_fibers():
    main = current()

    async def inner(x):
        got = await Suspend()
        main.switch(("coro", x))          # switch out while the coroutine runs
        return got + x

    async def outer(x):
        return await inner(x) * 2

    def drive(x):
        c = outer(x)
        assert c.send(None) == "suspended"
        try:
            c.send(10)
        except StopIteration as e:
            return e.value

    f1, f2 = Fiber(drive), Fiber(drive)
    assert f1.switch(1) == ("coro", 1)
    assert f2.switch(2) == ("coro", 2)
    churn = churn_c_stack()
    assert f2.frame.f_code.co_name == "inner"
    assert frame_names(f2.frame) == ["inner", "outer", "drive"]
    assert f1.switch() == 22
    assert f2.switch() == 24
    churn.throw()


def test_asyncio_loop_inside_a_fiber():
    # An event loop runs in one fiber; its task leaves the fiber mid-step
    # while another fiber drives a coroutine by hand.  (The running loop is
    # per thread in asyncio, so one loop per thread at a time.)
    main = current()

    async def task(n):
        out = []
        for i in range(n):
            await asyncio.sleep(0)
            main.switch(("loop", i))      # leave the fiber mid-task
            out.append(i)
        return out

    async def by_hand():
        return (await Suspend()) * 3

    def drive():
        c = by_hand()
        main.switch(c.send(None))
        try:
            c.send(main.switch("sent"))
        except StopIteration as e:
            return e.value

    fa = Fiber(lambda: asyncio.run(task(3)))
    fb = Fiber(drive)
    order = [fa.switch(), fb.switch()]
    order.append(fb.switch())
    order.append(fa.switch())
    order.append(fb.switch(5))
    while not fa.dead:
        order.append(fa.switch())
    assert order == [("loop", 0), "suspended", "sent", ("loop", 1), 15, ("loop", 2), [0, 1, 2]]


# ---------------------------------------------------------------------------
# recursion limits


def _recurse(n):
    return 1 if n == 0 else 1 + _recurse(n - 1)


def _max_depth():
    def probe(n):
        try:
            return probe(n + 1)
        except RecursionError:
            return n

    return probe(0)


def test_recursion_error_inside_fibers():
    main = current()
    base = _max_depth()

    def run():
        results = []
        for _ in range(3):
            results.append(_max_depth())
            main.switch()
        return results

    fibers = [Fiber(run) for _ in range(4)]
    for _ in range(3):
        for f in fibers:
            f.switch()
    results = [f.switch() for f in fibers]
    limit = sys.getrecursionlimit()
    for r in results:
        # a fiber starts with no frames: it gets at least main's headroom
        assert all(base - 5 <= d <= limit for d in r), (base, limit, r)
    assert _max_depth() == base


def test_fibers_killed_at_depth_do_not_leak_depth():
    main = current()
    base = _max_depth()

    def deep(n):
        if n == 0:
            main.switch()
        return deep(n - 1) if n else 0

    depth = sys.getrecursionlimit() // 2
    for _ in range(scaled(300, 30)):
        f = Fiber(deep)
        f.switch(depth)
        f.throw()
    assert _max_depth() == base


def test_recursion_limit_changed_while_suspended():
    main = current()
    old = sys.getrecursionlimit()

    def run():
        _recurse(old // 2)
        main.switch()
        return _max_depth()

    f = Fiber(run)
    f.switch()
    sys.setrecursionlimit(old + 2000)
    try:
        d = f.switch()
    finally:
        sys.setrecursionlimit(old)
    assert d > old


@needs_subprocess
def test_deep_c_recursion_in_fibers_raises_not_crashes():
    # C-level recursion (nested repr, re-entry through sorted) inside fibers,
    # some suspended deep, must end in RecursionError on every version.
    code = textwrap.dedent(
        """
        import sys
        from pycoro import Fiber, current
        main = current()

        def c_nest(n):
            return sorted([0], key=lambda x: c_nest(n + 1))[0] if n < 10**6 else 0

        def nested_list(n):
            x = []
            for _ in range(n):
                x = [x]
            return x

        def run(i):
            out = []
            try:
                c_nest(0)
            except RecursionError:
                out.append("c")
            main.switch(i)
            try:
                repr(nested_list(10**6))
            except RecursionError:
                out.append("repr")
            main.switch(i)
            def park(n):
                if n == 0:
                    main.switch(i)
                    return 0
                return sorted([0], key=lambda x: park(n - 1))[0]
            park(150)
            try:
                c_nest(0)
            except RecursionError:
                out.append("again")
            return out

        fibers = [Fiber(run) for _ in range(8)]
        for step in range(3):
            for i, f in enumerate(fibers):
                assert f.switch(i) == i
        results = [f.switch() for f in fibers]
        assert all(r == ["c", "repr", "again"] for r in results), results
        print("ok")
        """
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, (p.returncode, p.stderr[-3000:])
    assert p.stdout.strip() == "ok"


def test_gc_of_suspended_fibers_with_c_reentry():
    # A cycle through a suspended fiber whose chain crosses C re-entries: the
    # collector walks its frames (never an entry frame on the C stack) and
    # finalizes it with FiberExit.
    main = current()
    finalized = []

    class Node:
        pass

    def run():
        node = main.switch()           # a local of run's frame only
        try:
            sorted([0], key=lambda x: main.switch())
        finally:
            finalized.append(True)

    for _ in range(20):
        node = Node()
        f = Fiber(run)
        node.fiber = f
        f.switch()
        f.switch(node)                 # f's frames hold node, node holds f
        del f, node
    churn = churn_c_stack()
    gc.collect()
    assert len(finalized) == 20
    churn.throw()
