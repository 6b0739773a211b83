"""Per-fiber interpreter state: exceptions, contextvars, recursion, tracing."""
import contextvars
import sys

import pytest

import pycoro
from pycoro import Fiber, current

from tests.core.conftest import scaled


def test_exc_info_is_isolated_per_fiber():
    main = current()
    seen = []

    def inner():
        seen.append(sys.exc_info()[0])
        try:
            raise KeyError("in fiber")
        except KeyError:
            main.switch()
            seen.append(sys.exc_info()[0])

    f = Fiber(inner)
    try:
        raise ValueError("in main")
    except ValueError:
        f.switch()
        assert sys.exc_info()[0] is ValueError
    assert sys.exc_info() == (None, None, None)
    f.switch()
    assert seen == [None, KeyError]


def test_new_fiber_starts_in_empty_context():
    var = contextvars.ContextVar("var", default="default")
    var.set("main-value")
    assert Fiber(var.get).switch() == "default"


def test_contextvars_are_isolated_and_assignable():
    var = contextvars.ContextVar("var", default=None)
    main = current()

    def worker():
        var.set("worker")
        main.switch()
        return var.get()

    var.set("main")
    f = Fiber(worker)
    f.switch()
    assert var.get() == "main"
    assert f.context[var] == "worker"
    assert f.switch() == "worker"

    ctx = contextvars.copy_context()
    g = Fiber(var.get)
    g.context = ctx
    assert g.context is ctx
    assert g.switch() == "main"

    with pytest.raises(TypeError):
        g.context = {}


def test_context_of_running_fiber_is_the_threads():
    var = contextvars.ContextVar("v")
    var.set(1)
    assert current().context[var] == 1
    ctx = contextvars.Context()
    old = current().context
    current().context = ctx
    try:
        assert var.get(None) is None
    finally:
        current().context = old
    assert var.get() == 1


def test_finished_fiber_keeps_the_context_it_ran_in():
    var = contextvars.ContextVar("v")
    f = Fiber(lambda: var.set("inside"))
    f.switch()
    assert f.dead
    assert f.context[var] == "inside"
    assert var.get(None) is None


def test_fiber_killed_unstarted_keeps_its_assigned_context():
    ctx = contextvars.copy_context()
    f = Fiber(lambda: None)
    f.context = ctx
    with pytest.raises(KeyError):
        f.throw(KeyError)
    assert f.dead and f.context is ctx


def test_context_of_suspended_fiber_can_be_replaced():
    var = contextvars.ContextVar("v", default="unset")
    main = current()
    f = Fiber(lambda: (main.switch(), var.get())[1])
    f.switch()
    ctx = contextvars.Context()
    ctx.run(var.set, "replaced")
    f.context = ctx
    assert f.switch() == "replaced"


def test_deep_recursion_in_fiber_is_recursion_error():
    def recurse(n):
        return recurse(n + 1)

    def run():
        try:
            recurse(0)
        except RecursionError:
            return "recursion error"

    assert Fiber(run).switch() == "recursion error"


def test_recursion_depth_does_not_accumulate_over_killed_fibers():
    main = current()

    def descend(n):
        if n == 0:
            main.switch()
        else:
            descend(n - 1)

    limit = sys.getrecursionlimit()
    for _ in range(scaled(300, 30)):
        f = Fiber(descend)
        f.switch(limit // 3)
        f.throw()      # unwinds limit/3 frames
    # still room to recurse here and in a new fiber
    assert Fiber(lambda: descend.__name__).switch() == "descend"


def test_data_stack_survives_interleaved_depths():
    # A fiber suspended deep, another pushing big frames below it: the data
    # stack chunk of each fiber must stay its own.
    main = current()

    def big_frame(n):
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = a8 = a9 = n  # noqa: F841
        locals_ = [n] * 10
        if n:
            return big_frame(n - 1) + sum(locals_)
        main.switch()
        return 0

    fs = [Fiber(big_frame) for _ in range(20)]
    for i, f in enumerate(fs):
        f.switch(i * 7)
    for i, f in enumerate(fs):
        expected = sum(10 * k for k in range(1, i * 7 + 1))
        assert f.switch() == expected


def test_settrace_reports_switch_and_throw():
    events = []
    main = current()

    def tracer(event, args):
        origin, target = args
        events.append((event, origin, target))

    f = Fiber(lambda: main.switch())
    old = pycoro.settrace(tracer)
    try:
        assert pycoro.gettrace() is tracer
        f.switch()
        with pytest.raises(KeyError):     # uncaught in f: it reaches main
            f.throw(KeyError)
    finally:
        pycoro.settrace(old)
    assert events[0] == ("switch", main, f)
    assert events[1] == ("switch", f, main)
    assert events[2] == ("throw", main, f)
    assert events[3][0] == "throw" and events[3][2] is main
    assert pycoro.gettrace() is old


def test_failing_tracer_is_removed_and_raises():
    def bad_tracer(event, args):
        raise RuntimeError("tracer failed")

    f = Fiber(lambda: "ran")
    pycoro.settrace(bad_tracer)
    try:
        with pytest.raises(RuntimeError, match="tracer failed"):
            f.switch()
    finally:
        assert pycoro.gettrace() is None
        pycoro.settrace(None)


def test_settrace_rejects_non_callable():
    with pytest.raises(TypeError):
        pycoro.settrace(42)


def test_sys_settrace_keeps_working_across_switches():
    main = current()
    lines = []

    def tracer(frame, event, arg):
        if event == "call":
            lines.append(frame.f_code.co_name)
        return None

    def traced_inner():
        return "x"

    def run():
        main.switch()
        return traced_inner()

    f = Fiber(run)
    f.switch()
    sys.settrace(tracer)
    try:
        f.switch()
    finally:
        sys.settrace(None)
    assert "traced_inner" in lines
