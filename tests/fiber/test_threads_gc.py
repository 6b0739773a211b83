"""Threads, garbage collection of suspended fibers, interpreter exit."""
import gc
import subprocess
import sys
import textwrap
import threading
import weakref

import pytest

from pycoro import Fiber, FiberError, FiberExit, current

from tests.core.conftest import scaled
from tests.platform_support import needs_subprocess


def test_each_thread_has_its_own_main_fiber():
    mains = {}

    def body(name):
        mains[name] = current()

    ts = [threading.Thread(target=body, args=(i,)) for i in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len({id(m) for m in mains.values()}) == 3
    assert all(m.is_main for m in mains.values())
    assert current() not in mains.values()


def test_threads_switch_their_own_fibers_concurrently():
    n_threads, rounds = 4, scaled(20_000, 500)
    results, errors = {}, []

    def body(k):
        try:
            main = current()

            def counter():
                total = 0
                while True:
                    total += main.switch(total)

            f = Fiber(counter)
            f.switch()
            acc = 0
            for i in range(rounds):
                acc = f.switch(1)
            results[k] = acc
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=body, args=(k,)) for k in range(n_threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    assert results == {k: rounds for k in range(n_threads)}


def test_switch_to_fiber_of_another_thread_is_fiber_error():
    box = {}
    ready = threading.Event()
    done = threading.Event()

    def body():
        main = current()
        box["f"] = Fiber(lambda: main.switch())
        box["f"].switch()
        box["main"] = main
        ready.set()
        done.wait()

    t = threading.Thread(target=body)
    t.start()
    ready.wait()
    try:
        with pytest.raises(FiberError, match="another thread"):
            box["f"].switch()
        with pytest.raises(FiberError, match="another thread"):
            box["f"].throw()
        # An unstarted fiber belongs to the thread of its parents: it may be
        # given a parent anywhere, and switching to it from elsewhere fails
        # with an error naming both threads.
        f = Fiber(lambda: None)
        f.parent = box["main"]
        with pytest.raises(FiberError) as e:
            f.switch()
        assert "belongs to thread %d" % t.ident in str(e.value)
        assert "caller runs in thread %d" % threading.get_ident() in str(e.value)
        # A started fiber stays in its thread.
        g = Fiber(lambda: current().parent.switch())
        g.switch()
        with pytest.raises(ValueError, match="different thread"):
            g.parent = box["main"]
        g.throw()
    finally:
        done.set()
        t.join()
    with pytest.raises(FiberError, match="ended"):
        box["f"].switch()


def test_fiber_created_in_thread_stays_bound_to_it():
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("f", Fiber(lambda: 1)))
    t.start()
    t.join()
    with pytest.raises(FiberError):
        box["f"].switch()


def test_collected_suspended_fiber_runs_finally():
    main = current()
    log = []

    def run():
        try:
            main.switch()
        finally:
            log.append("finally")

    f = Fiber(run)
    f.switch()
    del f
    assert log == ["finally"]


def test_fiberexit_can_be_caught_and_cleanup_switches():
    main = current()
    log = []

    def run():
        try:
            main.switch()
        except FiberExit:
            log.append("caught")
            other = Fiber(lambda: log.append("cleanup fiber ran"))
            other.switch()
            return "ended normally"

    f = Fiber(run)
    f.switch()
    del f
    assert log == ["caught", "cleanup fiber ran"]


def test_cycle_through_suspended_frames_is_collected_with_finally():
    main = current()
    log = []

    def run():
        me = current()          # the frame references the fiber: a cycle
        try:
            main.switch()
        finally:
            log.append(me is not None)

    f = Fiber(run)
    f.switch()
    ref = weakref.ref(f)
    del f
    assert log == []            # still alive: only the cycle holds it
    gc.collect()
    assert log == [True]
    assert ref() is None


def test_thread_ending_with_suspended_fibers():
    box = {}

    def body():
        main = current()
        box["fs"] = [Fiber(lambda: main.switch()) for _ in range(10)]
        for f in box["fs"]:
            f.switch()

    t = threading.Thread(target=body)
    t.start()
    t.join()
    fs = box.pop("fs")
    assert all(not f.dead for f in fs)
    with pytest.raises(FiberError):
        fs[0].switch()
    del fs
    gc.collect()


def run_python(code):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=120)


@needs_subprocess
def test_interpreter_exits_cleanly_with_suspended_fibers_in_threads():
    p = run_python(
        """
        import threading, pycoro
        keep = []
        def body():
            main = pycoro.current()
            def run():
                try:
                    main.switch()
                finally:
                    pass
            for _ in range(5):
                f = pycoro.Fiber(run); f.switch(); keep.append(f)
        ts = [threading.Thread(target=body) for _ in range(3)]
        [t.start() for t in ts]; [t.join() for t in ts]
        main = pycoro.current()
        for _ in range(5):
            f = pycoro.Fiber(lambda: main.switch()); f.switch(); keep.append(f)
        cyc = pycoro.Fiber(lambda: (pycoro.current(), main.switch()))
        cyc.switch()
        print("bye")
        """
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout == "bye\n"
    assert p.stderr == ""


@needs_subprocess
def test_keyboard_interrupt_lands_in_running_fiber():
    p = run_python(
        """
        import os, signal, pycoro
        # a parent started without job control may have left SIGINT ignored
        signal.signal(signal.SIGINT, signal.default_int_handler)
        main = pycoro.current()
        def spin():
            try:
                while True:
                    main.switch()
            except KeyboardInterrupt:
                return "fiber"
        f = pycoro.Fiber(spin)
        where = None
        try:
            for i in range(10**7):
                if i == 1000:
                    os.kill(os.getpid(), signal.SIGINT)
                r = f.switch()
                if r == "fiber":
                    where = "fiber"
                    break
        except KeyboardInterrupt:
            where = "main"
        print(where)
        """
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() in ("fiber", "main")


def test_ten_thousand_fibers_alive():
    main = current()
    n = scaled(10_000, 1000)

    def run(i):
        got = main.switch(i)
        return got + i

    fs = [Fiber(run) for _ in range(n)]
    assert [f.switch(i) for i, f in enumerate(fs)] == list(range(n))
    assert all(f and not f.dead for f in fs)
    assert [f.switch(1) for f in reversed(fs)] == [i + 1 for i in reversed(range(n))]
    assert all(f.dead for f in fs)


def test_switch_chain_one_hundred_thousand_long():
    # fiber i starts fiber i+1 from inside its own stack; the last one sends
    # the count back down the chain as each one finishes into its parent.
    n = scaled(100_000, 2000)
    fibers = [None] * n

    def link(i):
        if i + 1 < n:
            fibers[i + 1] = Fiber(link)
            return fibers[i + 1].switch(i + 1) + 1
        return 1

    # A new fiber starts at its starter's recursion depth, so a chain this
    # long needs the recursion limit raised, as n nested calls would.
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(n + 1000)
    try:
        fibers[0] = Fiber(link)
        assert fibers[0].switch(0) == n
    finally:
        sys.setrecursionlimit(old)
    assert all(f.dead for f in fibers)


def rss_kb():
    with open("/proc/self/statm") as fh:
        import os

        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def test_create_switch_finish_cycles_do_not_leak():
    main = current()

    def run(x):
        y = main.switch(x + 1)
        return y * 2

    def cycles(n):
        for i in range(n):
            f = Fiber(run)
            f.switch(i)
            f.switch(i)

    cycles(20_000)          # warm up pools and allocator
    gc.collect()
    before = rss_kb()
    cycles(scaled(100_000, 10_000))
    gc.collect()
    grown = rss_kb() - before
    assert grown < 4096, f"RSS grew by {grown} KiB over 100,000 cycles"


def test_collected_suspended_fibers_do_not_leak():
    main = current()

    def run():
        try:
            main.switch()
        finally:
            pass

    def cycles(n):
        for _ in range(n):
            Fiber(run).switch()

    cycles(20_000)
    gc.collect()
    before = rss_kb()
    cycles(scaled(100_000, 10_000))
    gc.collect()
    grown = rss_kb() - before
    assert grown < 4096, f"RSS grew by {grown} KiB"


@pytest.mark.parametrize("trigger", ["switch", "create", "current", "thread_end"])
def test_dropped_foreign_fiber_is_killed_by_its_thread(trigger):
    log = []
    box = {}
    started = threading.Event()
    release = threading.Event()

    def body():
        main = current()

        def run():
            try:
                main.switch()
            finally:
                log.append("finally")

        box["f"] = Fiber(run)
        box["f"].switch()
        started.set()
        release.wait()
        if trigger == "switch":
            Fiber(lambda: None).switch()
            log.append("after switch")
        elif trigger == "create":
            Fiber()
            log.append("after create")
        elif trigger == "current":
            current()
            log.append("after current")

    t = threading.Thread(target=body)
    t.start()
    started.wait()
    del box["f"]
    release.set()
    t.join()
    assert log[0] == "finally"
    assert len(log) == (1 if trigger == "thread_end" else 2)


def test_cycle_through_another_threads_fiber_is_collected_by_any_thread():
    # A thread running gc.collect() in a loop must collect the garbage
    # cycles of other threads' suspended fibers (the soak lane's leak: it
    # promoted them to the oldest generation instead, and their own thread
    # never ran the full collection that could free them).  The fibers are
    # unwound in their own thread, at its next switch.
    where, alive = [], []
    made, collected = threading.Event(), threading.Event()

    class Node:
        def __init__(self):
            alive.append(1)

        def __del__(self):
            alive.pop()

    def body():
        main = current()
        for _ in range(5):
            node = Node()

            def hold(node=node):
                buf = [node]            # node -> fiber -> frame -> node
                try:
                    main.switch(len(buf))
                finally:
                    where.append(threading.current_thread().name)
            node.fiber = Fiber(hold)
            node.fiber.switch()
        node = hold = None
        made.set()
        collected.wait()
        where.append("before switch")
        Fiber(lambda: None).switch()
        where.append("after switch")

    gc.disable()                        # only the collection below collects
    try:
        t = threading.Thread(target=body, name="owner")
        t.start()
        made.wait()
        gc.collect()
        collected.set()
        t.join()
    finally:
        gc.enable()
    assert where == ["before switch"] + ["owner"] * 5 + ["after switch"]
    assert alive == []


def test_fiber_surviving_its_kill_is_killed_again_when_dropped_again():
    main = current()
    hub = Fiber(lambda: None)
    kept = []
    log = []

    def worker():
        try:
            main.switch()
        except FiberExit:
            kept.append(current())           # resurrects the fiber
            log.append(current().parent is main)
            hub.switch()                     # and leaves without finishing
        finally:
            log.append("finally")

    g = Fiber(worker, parent=hub)
    g.switch()
    del g
    assert log == [True]                     # it survived the first FiberExit
    assert kept and kept[0].parent is hub    # parent restored after the kill
    ref = weakref.ref(kept[0])
    del kept[:]
    gc.collect()
    assert ref() is None
    assert log == [True, "finally"]          # the second drop unwound it



def test_orphan_dropped_releases_its_frames_and_its_threads_main_fiber():
    # A fiber suspended when its thread ended holds the thread's main fiber
    # (its parent, and on its frame's value stack in `parent.switch()`):
    # dropping it releases both (greenlet's test_throw_to_dead_thread_...).
    import pycoro._pycoro as P
    import weakref
    box = {}

    def worker():
        current().parent.switch()

    def creator():
        g = Fiber(worker)
        g.switch()
        box["g"] = g

    for _ in range(3):
        t = threading.Thread(target=creator)
        t.start()
        t.join()
        g = box.pop("g")
        main = weakref.ref(g.parent)
        assert g.frame is not None and g.frame.f_code.co_name == "worker"
        with pytest.raises(FiberError):
            g.throw(ValueError)
        del g
        gc.collect()
        assert main() is None
    assert P._counts()["main_fibers"] <= 1       # this thread's, at most
