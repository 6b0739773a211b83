"""Every kind of bad input gets a clear Python exception, never a crash."""
import gc
import subprocess
import sys
import textwrap

import pytest

import pycoro
from pycoro import Fiber, FiberError, current

from tests.platform_support import needs_subprocess


def test_constructor_argument_types():
    f = Fiber(42)                     # any object, as greenlet: calling it fails
    with pytest.raises(TypeError, match="not callable"):
        f.switch()
    assert f.dead
    with pytest.raises(TypeError, match="parent must be a Fiber"):
        Fiber(parent="x")
    with pytest.raises(TypeError):
        Fiber(lambda: None, None, "extra")
    with pytest.raises(TypeError):
        Fiber(bogus=1)


def test_context_type_is_checked():
    with pytest.raises(TypeError, match="contextvars.Context"):
        Fiber().context = 5


def test_switch_into_fiber_from_its_own_finalizer():
    main = current()
    outcome = []

    class Stubborn(Fiber):
        def __del__(self):
            try:
                self.switch()
            except FiberError as e:
                outcome.append(str(e))

    f = Stubborn(lambda: main.switch())
    f.switch()
    del f
    gc.collect()
    assert outcome == ["cannot switch into a fiber from its own finalizer"]


def test_finalizer_of_subclass_runs_after_fiber_is_unwound():
    main = current()
    log = []

    class Logged(Fiber):
        def __del__(self):
            log.append(("del", self.dead))

    def run():
        try:
            main.switch()
        finally:
            log.append("finally")

    f = Logged(run)
    f.switch()
    del f
    assert log == ["finally", ("del", True)]


def test_run_not_callable_at_start_via_subclass_attribute():
    class Odd(Fiber):
        run = 5

    with pytest.raises(TypeError):
        Odd().switch()


def test_fiber_without_run_raises_attribute_error_in_parent():
    with pytest.raises(AttributeError):
        Fiber().switch()


def test_run_raising_systemexit_reaches_parent():
    def leave():
        raise SystemExit(3)

    with pytest.raises(SystemExit) as info:
        Fiber(leave).switch()
    assert info.value.code == 3


def test_switch_with_huge_and_odd_arguments():
    big = list(range(100_000))
    main = current()
    f = Fiber(lambda *a, **k: main.switch(len(a), sorted(k)))
    assert f.switch(*big, **{str(i): i for i in range(100)})[0] == 100_000


def test_gettrace_settrace_wrong_arity():
    with pytest.raises(TypeError):
        pycoro.settrace()
    with pytest.raises(TypeError):
        pycoro.current(1)


@needs_subprocess
def test_each_bad_case_in_a_fresh_interpreter_does_not_crash():
    code = textwrap.dedent(
        """
        import gc, threading, pycoro
        from pycoro import Fiber, FiberError
        errors = []
        def expect(exc, fn):
            try:
                fn()
            except exc:
                errors.append(exc.__name__)
            else:
                raise SystemExit("no %s from %r" % (exc.__name__, fn))
        main = pycoro.current()
        f = Fiber(lambda: main.switch()); f.switch()
        expect(AttributeError, lambda: setattr(f, "run", print))
        a = Fiber(); b = Fiber(parent=a)
        expect(ValueError, lambda: setattr(a, "parent", b))
        expect(TypeError, lambda: Fiber(run=3).switch())
        expect(TypeError, lambda: f.throw(3))
        box = {}
        t = threading.Thread(target=lambda: box.setdefault("g", Fiber(lambda: 1)))
        t.start(); t.join()
        expect(FiberError, lambda: box["g"].switch())
        class Del(Fiber):
            def __del__(self):
                expect(FiberError, self.switch)
        d = Del(lambda: main.switch()); d.switch(); del d; gc.collect()
        print(len(errors))
        """
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "6"
