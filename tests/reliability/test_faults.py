"""Faults: allocation failures at every allocation point of a switch, real
signals during busy switching, RecursionError with C frames on the stack,
exceptions from __del__, from trace functions and SystemExit from run,
threads and interpreter exit with suspended fibers.  Anything that could
crash the interpreter runs in a subprocess."""
import gc
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

import pycoro
from pycoro import Fiber, FiberError, FiberExit, current
from pycoro._pycoro import _inject_alloc_failure

from tests.platform_support import needs_subprocess, scaled


def run_child(code, timeout=300):
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                       text=True, timeout=timeout)
    return p


# ---------------------------------------------------------------- MemoryError

def deep(n, fn):
    """n Python frames (each with a C call in between) then fn()."""
    if n == 0:
        return fn()
    box = []
    sorted([0], key=lambda _: box.append(deep(n - 1, fn)))
    return box[0]


def retrying_switch(target, value, errors, me):
    """switch(), retried after a MemoryError (the injected failure is one
    shot).  Records who saw the error and checks that the failed switch left
    the caller running."""
    while True:
        try:
            return target.switch(value)
        except MemoryError:
            assert current() is me, "a failed switch moved to another fiber"
            errors.append(me)


def protocol(program):
    """Fibers a, b, c at different depths (5, 30, 60 frames with C calls in
    between) that forward commands to each other: ("to", name, rest) makes
    the receiver switch to fiber `name` with `rest`, ("back", x) switches to
    main with (receiver, x), "stop" ends the fiber.  Every switch is retried
    on MemoryError.  Returns (what main received, MemoryErrors seen, order of
    finally blocks)."""
    main = current()
    errors, finals, fibers = [], [], {}

    def make(name, depth):
        def loop(v):
            me = fibers[name]
            try:
                while v != "stop":
                    if v[0] == "to":
                        v = retrying_switch(fibers[v[1]], v[2], errors, me)
                    else:
                        v = retrying_switch(main, (name, v[1]), errors, me)
                return (name, "done")
            finally:
                finals.append(name)
        return Fiber(lambda v: deep(depth, lambda: loop(v)))

    for name, depth in (("a", 5), ("b", 30), ("c", 60)):
        fibers[name] = make(name, depth)
    got = []
    for i, (target, msg) in enumerate(program):
        # main switches from a different depth each time: its own bytes
        # below the fibers' stack_stop must then be saved, in growing sizes
        got.append(deep(10 * i, lambda: retrying_switch(fibers[target], msg, errors, main)))
    for name in "abc":
        if fibers[name]:
            got.append(retrying_switch(fibers[name], "stop", errors, main))
    return got, [name_of(fibers, f) for f in errors], finals


def name_of(fibers, f):
    for k, v in fibers.items():
        if v is f:
            return k
    return "main"


PROGRAM = [
    ("a", ("back", 1)), ("b", ("back", 2)), ("c", ("back", 3)),     # start all
    ("a", ("back", 4)),                                              # main -> a
    ("c", ("back", 5)),                                              # main -> c (deepest)
    ("a", ("to", "c", ("to", "b", ("back", 6)))),                    # a -> c -> b -> main
    ("b", ("to", "a", ("back", 7))),                                 # b -> a -> main
    ("c", ("to", "a", ("to", "c", ("back", 8)))),                    # c -> a -> c -> main
]


def protocol_in_thread(program, fail_at):
    """protocol() in a new thread: its main fiber's save buffer starts
    empty, so main's allocations happen in this run too."""
    out = []

    def body():
        _inject_alloc_failure(fail_at)
        try:
            out.append(protocol(program))
        except BaseException as e:  # reported below
            out.append(e)
        finally:
            _inject_alloc_failure(0)

    t = threading.Thread(target=body)
    t.start()
    t.join()
    if isinstance(out[0], BaseException):
        raise out[0]
    return out[0]


def test_memory_error_at_every_allocation_point_of_a_switch():
    """Run the protocol once per allocation point of the C core, failing
    exactly that allocation: the switch that makes it raises MemoryError in
    its caller (which goes on running), and once retried, the whole run
    gives what the run without failure gives; every finally block runs once."""
    baseline, errors, finals = protocol_in_thread(PROGRAM, 0)
    assert errors == [] and sorted(finals) == ["a", "b", "c"]
    assert baseline[:8] == [("a", 1), ("b", 2), ("c", 3), ("a", 4), ("c", 5), ("b", 6),
                            ("a", 7), ("c", 8)]
    # An allocation of a finished fiber's last switch is retried by the core
    # (nobody could get the error): such a point shows no MemoryError.  The
    # protocol's allocations are over after 30 points in a row without one.
    points, silent, quiet_run, n = 0, 0, 0, 0
    who = set()
    while quiet_run < 30:
        n += 1
        assert n < 500, "the protocol keeps allocating"
        got, errors, finals = protocol_in_thread(PROGRAM, n)
        assert got == baseline, f"allocation {n}"
        assert sorted(finals) == ["a", "b", "c"], f"allocation {n}"
        if not errors:
            quiet_run += 1
            continue
        silent += quiet_run
        quiet_run = 0
        assert len(errors) == 1, (n, errors)
        points += 1
        who.update(errors)
    print(f"\nMemoryError injected at {points} allocation points "
          f"(+{silent} retried silently in a finished fiber's last switch); "
          f"failing switches made by {sorted(who)}")
    # main, and fibers switching to fibers, all hit a failing allocation
    assert points >= 6 and {"main", "a", "b", "c"} <= who, (points, who)


def test_finished_fibers_last_switch_survives_an_injected_failure():
    """A fiber that returns cannot report a failure to anyone: the core
    retries its last switch's allocation (pycoro_core.c, save_up_to)."""
    main = current()

    def body():
        deep(50, lambda: main.switch("suspended"))
        _inject_alloc_failure(1)      # the next core allocation fails once
        return "finished"

    f = Fiber(body)
    # a second fiber lower on the stack holds bytes that the dying fiber's
    # last switch must save (so that switch does allocate)
    assert f.switch() == "suspended"
    try:
        assert f.switch() == "finished"
    finally:
        _inject_alloc_failure(0)
    assert f.dead


# ----------------------------------------------------------- real signals

@needs_subprocess
def test_keyboard_interrupt_from_real_signals_during_busy_switching():
    p = run_child(f"""
        import os, signal, sys, threading
        from pycoro import Fiber, current
        main = current()
        states = []
        def ping(st):
            # st: [in the try, times the finally ran].  ping is started
            # before the timer: a KeyboardInterrupt at its first instruction,
            # before the try, would owe no finally (the arm64 lane hit that).
            try:
                st[0] = 1
                while True:
                    main.switch(1)
            finally:
                st[1] += 1
        interrupts = in_fiber = 0
        want = {scaled(40, 10)}
        while interrupts < want:
            st = [0, 0]
            states.append(st)
            f = Fiber(ping)
            f.switch(st)
            # a real SIGINT from the kernel, 2 ms from now, whoever runs then
            signal.setitimer(signal.ITIMER_REAL, 0.002)
            try:
                n = 0
                while True:
                    n += f.switch()
            except KeyboardInterrupt:
                interrupts += 1
                if f.dead:
                    in_fiber += 1         # raised inside ping: it ended
                else:
                    f.throw()             # raised in main: end ping ourselves
                    assert f.dead
            assert current() is main
        # every fiber ran its finally, exactly once
        assert len(states) == interrupts and states == [[1, 1]] * interrupts, states
        # still switching fine
        g = Fiber(lambda x: main.switch(x + 1) + 1)
        assert g.switch(1) == 2 and g.switch(5) == 6 and g.dead
        print("interrupts", interrupts, "in fiber", in_fiber)
    """.replace("signal.setitimer", "signal.signal(signal.SIGALRM, lambda *a: os.kill(os.getpid(), signal.SIGINT)); signal.setitimer")
      # a parent started without job control may have left SIGINT ignored
      .replace("main = current()", "signal.signal(signal.SIGINT, signal.default_int_handler); main = current()", 1))
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stderr == ""
    print("\n" + p.stdout.strip())


# ---------------------------------------------------------- RecursionError

def c_recurse(n):
    # C frames (sorted calling its key) between every Python frame
    return sorted([0], key=lambda _: c_recurse(n + 1))


def test_recursion_error_inside_fibers_with_c_frames():
    main = current()
    limit = sys.getrecursionlimit()

    def body():
        hits = 0
        for _ in range(3):
            try:
                c_recurse(0)
            except RecursionError:
                hits += 1
            main.switch(hits)
        return hits

    # four fibers take turns; each meets RecursionError once per turn,
    # however deep the others are suspended
    fs = [Fiber(body) for _ in range(4)]
    got = [[f.switch() for f in fs] for _ in range(3)]
    assert got == [[1, 1, 1, 1], [2, 2, 2, 2], [3, 3, 3, 3]]
    assert [f.switch() for f in fs] == [3, 3, 3, 3]
    assert all(f.dead for f in fs)
    assert sys.getrecursionlimit() == limit


def _depth_left(n=0):
    try:
        return _depth_left(n + 1)
    except RecursionError:
        return n


def test_recursion_depth_is_per_fiber():
    """A fiber suspended near the limit does not eat main's depth, and the
    fiber still has only what it left when resumed."""
    main = current()
    limit = sys.getrecursionlimit()

    def down(n):
        if n == 0:
            main.switch("bottom")
            return _depth_left()
        return down(n - 1)

    # A fiber starts at its starter's depth: go to within 60 of the limit.
    f = Fiber(lambda: down(_depth_left() - 60))
    assert f.switch() == "bottom"
    assert _depth_left() > limit - 100          # main has (almost) all of it
    left = f.switch()
    assert f.dead and 20 < left < 70, left


@needs_subprocess
def test_recursion_error_at_low_limit_with_switches_at_every_level():
    p = run_child("""
        import sys
        from pycoro import Fiber, current
        sys.setrecursionlimit(120)
        main = current()
        def rec(n):
            main.switch(n)
            return sorted([0], key=lambda _: rec(n + 1))
        errors = 0
        for k in range(20):
            f = Fiber(lambda: rec(0))
            try:
                n = f.switch()
                while True:
                    n = f.switch()
            except RecursionError:
                errors += 1
            assert f.dead
        print("ok", errors)
    """)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.strip() == "ok 20", p.stdout + p.stderr


# ------------------------------------------ __del__, trace functions, exit

def test_exception_from_del_of_a_suspended_fiber_subclass():
    seen = []
    log = []

    class Bad(Fiber):
        def __del__(self):
            log.append("del")
            raise ValueError("from __del__")

    def body():
        try:
            current().parent.switch()
        finally:
            log.append("finally")

    old = sys.unraisablehook
    sys.unraisablehook = lambda u: seen.append(u.exc_type)
    try:
        f = Bad(body)
        f.switch()
        del f
        gc.collect()
    finally:
        sys.unraisablehook = old
    assert log == ["finally", "del"]
    assert seen == [ValueError]


def test_del_that_switches_to_other_fibers():
    main = current()
    out = []
    helper = Fiber(lambda v: out.append(("helper", v)) or main.switch("back"))

    class Switchy(Fiber):
        def __del__(self):
            out.append(helper.switch("from del"))
            try:
                self.switch()
            except FiberError as e:
                out.append("refused")

    f = Switchy(lambda: main.switch())
    f.switch()
    del f
    gc.collect()
    assert out == [("helper", "from del"), "back", "refused"]


def test_exception_from_a_trace_function():
    main = current()

    class Boom(Exception):
        pass

    def tracer(event, args):
        raise Boom(event)

    def failing_into(target):
        """A tracer that fails only on arrivals in `target`."""
        return lambda event, args: tracer(event, args) if args[1] is target else None

    old = pycoro.settrace(None)
    try:
        # 1. starting f: the tracer fails on arrival in f; run never runs and
        #    the error goes to f's parent (main)
        ran = []
        f = Fiber(lambda: ran.append(1))
        pycoro.settrace(tracer)
        with pytest.raises(Boom):
            f.switch()
        assert pycoro.gettrace() is None          # a failing tracer is removed
        assert f.dead and ran == []

        # 2. resuming a suspended fiber: raised inside it, at its switch()
        caught = []

        def h_body():
            try:
                main.switch("h suspended")
            except Boom as e:
                caught.append(str(e))
            return "h done"

        h = Fiber(h_body)
        assert h.switch() == "h suspended"
        pycoro.settrace(failing_into(h))
        assert h.switch() == "h done"
        assert caught == ["switch"] and pycoro.gettrace() is None

        # 3. arriving back in main: raised in main at its switch(); the fiber
        #    that switched stays suspended and usable
        g = Fiber(lambda: main.switch("in g") + 1)
        assert g.switch() == "in g"       # g suspended in main.switch()
        g2 = Fiber(lambda: main.switch("in g2"))
        pycoro.settrace(failing_into(main))
        with pytest.raises(Boom):
            g2.switch()                   # arrives in g2 fine; g2 -> main: Boom in main
        assert pycoro.gettrace() is None
        assert not g2.dead and g2.started
        assert g.switch(41) == 42
        g2.throw()
        assert g2.dead
    finally:
        pycoro.settrace(old)


def test_run_raising_system_exit_reaches_the_parent():
    f = Fiber(lambda: sys.exit(7))
    with pytest.raises(SystemExit) as ei:
        f.switch()
    assert ei.value.code == 7 and f.dead


@needs_subprocess
def test_uncaught_system_exit_from_a_fiber_exits_the_interpreter():
    p = run_child("""
        import sys
        from pycoro import Fiber, current
        def body():
            try:
                sys.exit(5)
            finally:
                print("finally")
        Fiber(body).switch()
        print("not reached")
    """)
    assert p.returncode == 5, p.stdout + p.stderr
    assert p.stdout == "finally\n" and p.stderr == ""


# ------------------------------------------------- threads and exit

def test_thread_ending_with_suspended_fibers():
    box = {}

    def thread_body():
        main = current()
        fs = []
        for i in range(5):
            f = Fiber(lambda i=i: main.switch(i))
            assert f.switch() == i
            fs.append(f)
        box["fibers"] = fs

    t = threading.Thread(target=thread_body)
    t.start()
    t.join()
    fs = box.pop("fibers")
    for f in fs:
        assert not f.dead
        with pytest.raises(FiberError):
            f.switch()
        with pytest.raises(FiberError):
            f.throw()
    del f
    del fs
    gc.collect()
    # this thread is unaffected
    g = Fiber(lambda: 3)
    assert g.switch() == 3


@needs_subprocess
def test_interpreter_exit_with_suspended_fibers_in_several_threads():
    p = run_child("""
        import threading, sys
        from pycoro import Fiber, current
        started = threading.Barrier(5)
        keep = []
        def park(n, wait):
            main = current()
            def body(i):
                try:
                    main.switch(i)
                finally:
                    pass
            for i in range(n):
                f = Fiber(body)
                f.switch(i)
                keep.append(f)
            # a fiber suspended inside another fiber
            outer = Fiber(lambda: Fiber(lambda: main.switch("inner")).switch())
            outer.switch()
            keep.append(outer)
            started.wait()
            if wait:
                threading.Event().wait()       # daemon: still running at exit
        ts = [threading.Thread(target=park, args=(50, k % 2 == 0), daemon=k % 2 == 0)
              for k in range(4)]
        for t in ts:
            t.start()
        park(50, False)
        print("exiting")
    """)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout == "exiting\n" and p.stderr == "", p.stdout + p.stderr


@needs_subprocess
def test_exit_from_inside_a_fiber_with_others_suspended():
    p = run_child("""
        import sys, threading
        from pycoro import Fiber, current
        main = current()
        parked = [Fiber(lambda: main.switch()) for _ in range(10)]
        for f in parked:
            f.switch()
        def body():
            inner = Fiber(lambda: sys.exit(0))
            inner.switch()
        Fiber(body).switch()
    """)
    assert p.returncode == 0 and p.stderr == "", p.stdout + p.stderr
