"""Fibers of many threads at once: what free-threaded CPython (3.13t, the GIL
off) must survive.  Every test here also runs on a build with the GIL, where
the same program must give the same results (threads then take turns)."""
import gc
import os
import subprocess
import sys
import sysconfig
import textwrap
import threading

import pytest

from pycoro import Fiber, FiberError, current

from tests.core.conftest import scaled
from tests.platform_support import needs_subprocess

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


@needs_subprocess
@pytest.mark.skipif(not FREE_THREADED, reason="not a free-threaded build "
                    "(sysconfig Py_GIL_DISABLED is %r)" % sysconfig.get_config_var("Py_GIL_DISABLED"))
def test_gil_stays_off_after_import_and_use():
    # Not forced with -X gil=0: an extension that does not declare
    # Py_MOD_GIL_NOT_USED would switch the GIL on, with a RuntimeWarning.
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}
    code = textwrap.dedent("""
        import sys
        import pycoro, pycoro.compat, pycoro._pycoro
        from pycoro.compat import greenlet
        f = pycoro.Fiber(lambda x: x + 1)
        assert f.switch(1) == 2
        assert greenlet.greenlet(lambda: 3).switch() == 3
        assert not sys._is_gil_enabled(), "the GIL was switched on"
        print("gil off")
        """)
    p = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", code],
                       capture_output=True, text=True, env=env, timeout=120)
    assert (p.returncode, p.stdout.strip()) == (0, "gil off"), p.stderr


def test_cross_thread_switch_and_throw_raise_while_the_owner_switches():
    # Thread T keeps switching its fiber; this thread keeps trying to switch
    # to it and throw into it.  Every attempt is FiberError, and T's own
    # results are all right.
    turns = scaled(2000, 200)
    box = {}
    ready = threading.Event()
    results = []

    def owner():
        main = current()

        def body(v):
            while True:
                v = main.switch(v * 2)
        f = box["f"] = Fiber(body)
        ready.set()
        for i in range(turns):
            results.append(f.switch(i))
        f.throw()                     # FiberExit: it ends

    t = threading.Thread(target=owner)
    t.start()
    ready.wait()
    errors = 0
    try:
        while t.is_alive() or errors == 0:
            for op in (lambda: box["f"].switch(1), lambda: box["f"].throw(ValueError)):
                try:
                    op()
                except FiberError:
                    errors += 1
            if errors >= 2 * turns:
                break
    finally:
        t.join()
    assert errors >= 2
    assert results == [2 * i for i in range(turns)]
    assert box["f"].dead


@needs_subprocess
def test_switch_inside_a_critical_section_releases_it_for_other_fibers():
    # list.sort holds the list's critical section (free-threaded builds) while
    # it calls the key function.  The key switches away; the fiber switched to
    # appends to the same list (its critical section must be free, not held
    # by the suspended sort: else this deadlocks) and sleeps (detaching the
    # thread state walks the thread's chain of critical sections: the sort's
    # records, on the suspended fiber's stack, must not be in it).  On
    # resuming, the sort takes its lock back and, as with the GIL, reports
    # the change.  In a child, so that a deadlock fails instead of hanging.
    code = textwrap.dedent("""
        import time
        from pycoro import Fiber, current

        lst = list(range(20, 0, -1))
        main = current()

        def key(x):
            main.switch("in key")
            return x

        def sorter():
            try:
                lst.sort(key=key)
            except ValueError as e:
                return str(e)
            return "sorted"

        f = Fiber(sorter)
        assert f.switch() == "in key"
        lst.append(0)
        time.sleep(0)
        out = f.switch()
        while out == "in key":
            time.sleep(0)
            out = f.switch()
        print(out)
        """)
    try:
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("deadlock: the suspended sort still holds the list's critical section")
    assert (p.returncode, p.stdout.strip()) == (0, "list modified during sort"), p.stderr


class _Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.n = 0

    def add(self, k=1):
        with self.lock:
            self.n += k


def test_stress_eight_threads_switch_throw_drop_while_another_collects():
    """8 threads create, switch, throw into and drop their fibers, drop each
    other's (through a shared list) and try to switch to them, while a ninth
    thread runs gc.collect() in a loop.  Bounded by operation counts.  Every
    fiber's `finally` runs exactly once, in its own thread, and every value
    comes back right."""
    workers = 8
    rounds = scaled(150, 20)
    gc_rounds = scaled(400, 40)
    created, finalized, wrong_thread = _Counter(), _Counter(), _Counter()
    pops, own_switches, cross_errors = _Counter(), _Counter(), _Counter()
    shared = []                 # suspended fibers, any thread's
    failures = []
    done_workers = _Counter()
    stop_gc = threading.Event()
    gc_started = threading.Event()
    looped = threading.Barrier(workers + 1)     # the workers and the gc thread
    drained = threading.Barrier(workers)
    collected = threading.Barrier(workers)
    # gc.collect() does nothing while another thread's collection runs (on
    # every build), and a thread's collection finds only its own fibers'
    # cycles: the closing collections take turns.
    gc_turns = threading.Lock()
    gc_runs = []

    def worker(w):
        me = threading.get_ident()
        main = current()

        def body(start):
            # `here` in the frame references the fiber itself: a cycle
            # through its suspended frames, collectable only in this thread.
            here = current()
            total = start
            try:
                while True:
                    try:
                        v = main.switch(total)
                    except ValueError as e:
                        v = main.switch(("caught", e.args[0]))
                    total += v
            finally:
                if threading.get_ident() != me:
                    wrong_thread.add()
                finalized.add()
                del here

        try:
            gc_started.wait()               # the collections overlap the loop
            for r in range(rounds):
                f = Fiber(body)
                created.add()
                got = [f.switch(r), f.switch(1), f.switch(2)]
                if got != [r, r + 1, r + 3]:
                    failures.append((w, r, got))
                if f.throw(ValueError, w) != ("caught", w):
                    failures.append((w, r, "throw"))
                if f.switch(0) != r + 3:
                    failures.append((w, r, "after throw"))
                kind = r % 4
                if kind == 0:
                    f.throw()               # FiberExit: finally runs now
                elif kind == 1:
                    del f                   # dropped here: unwound by its finalizer
                elif kind == 2:
                    shared.append(f)        # someone (maybe another thread) drops it
                    del f
                else:
                    del f                   # only the cycle is left: a collection finds it
                # Take a fiber from the list (often another thread's): it
                # cannot be switched to from here unless it is ours; drop it.
                try:
                    g = shared.pop()
                except IndexError:
                    continue
                pops.add()
                try:
                    if g.switch(0) >= 0:    # ours: it gives its total back
                        own_switches.add()
                except FiberError:
                    cross_errors.add()      # another thread's
                del g
            if w % 2 == 0:
                gc.collect()                # this thread's own, racing the gc thread's
        except BaseException as e:          # reported below, with the thread
            failures.append((w, "exception", repr(e)))
        finally:
            done_workers.add()
            if done_workers.n == workers:
                stop_gc.set()
            # Nobody ends before every fiber is dropped by whoever took it
            # (a fiber dropped after its thread ended would be an orphan,
            # released without its finally blocks): first everybody stops
            # looping, then drains the list, then ends.
            looped.wait()
            while True:                     # what is left: drop it, any thread
                try:
                    shared.pop()
                except IndexError:
                    break
            drained.wait()
            with gc_turns:
                gc.collect()                # this thread's cyclic fibers: unwound here
            collected.wait()
            current()                       # and the ones others dropped
            # The thread ends; whatever was handed over since is unwound as it does.

    def collector():
        n = 0
        while n < gc_rounds and not stop_gc.is_set():
            gc_started.set()
            gc.collect()
            n += 1
        gc_runs.append(n)
        looped.wait()

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(workers)]
    threads.append(threading.Thread(target=collector))
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not any(t.is_alive() for t in threads), "a thread hangs"
    assert failures == []
    assert created.n == workers * rounds
    # Fibers dropped in the last moments may be handed to a thread that
    # unwinds them as it ends: joined threads have done so.
    gc.collect()
    assert finalized.n == created.n, (finalized.n, created.n)
    assert wrong_thread.n == 0
    assert gc_runs and gc_runs[0] >= 1, "the gc thread did not run"
    # Every fiber taken from the list was either ours (switched) or another
    # thread's (FiberError); how many of each depends on scheduling.
    assert pops.n == own_switches.n + cross_errors.n > 0


def test_saved_state_of_another_threads_fiber_is_read_only_where_the_gil_is():
    # With the GIL the owner cannot switch while this thread reads, so the
    # frame and context of its suspended fiber are readable from here.  On
    # a free-threaded build the owner may resume it meanwhile and nothing
    # locks the switch: the frame reads as None and the context can be
    # neither read nor set (ValueError).  The parent is readable on both
    # (the object's critical section guards it).
    box = {}
    ready, done = threading.Event(), threading.Event()

    def owner():
        main = current()

        def parked():
            main.switch()
        f = box["f"] = Fiber(parked)
        f.switch()
        box["main"] = main
        ready.set()
        done.wait()
        f.switch()                      # it ends

    t = threading.Thread(target=owner)
    t.start()
    ready.wait()
    try:
        f = box["f"]
        assert f.parent is box["main"]
        if FREE_THREADED:
            assert f.frame is None
            with pytest.raises(ValueError, match="another running thread"):
                f.context
            with pytest.raises(ValueError, match="another running thread"):
                f.context = None
        else:
            assert f.frame is not None and f.frame.f_code.co_name == "parked"
            f.context = f.context           # allowed: nothing switches meanwhile
        # An unstarted fiber may be given a parent in another thread either way.
        g = Fiber(lambda: None)
        g.parent = box["main"]
        assert g.parent is box["main"]
    finally:
        done.set()
        t.join()
    assert box["f"].dead
