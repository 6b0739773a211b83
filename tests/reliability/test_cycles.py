"""Cycles through suspended fibers are collected: the fiber's frames are
visited by its GC traversal, and when the cycle is garbage the fiber gets
FiberExit (its finally blocks run) before the cycle is cleared."""
import gc
import weakref

from pycoro import Fiber, FiberExit, current


class Box:
    pass


def test_fiber_whose_frame_holds_the_fiber_is_collected():
    log = []
    main = current()

    def body():
        me = current()              # a local referencing the fiber itself
        box = Box()
        box.me = me
        try:
            main.switch()
        except FiberExit:
            log.append(("FiberExit", box.me is me))
            raise
        finally:
            # runs before the cycle is cleared: locals are intact
            log.append(("finally", type(box).__name__))

    f = Fiber(body)
    f.switch()
    ref = weakref.ref(f)
    del f
    assert ref() is not None              # kept by its own frame: a cycle
    assert log == []
    gc.collect()
    assert log == [("FiberExit", True), ("finally", "Box")]
    assert ref() is None


def test_cycle_through_two_suspended_fibers_and_a_dict():
    log = []
    main = current()
    shared = {}

    def body(name):
        shared[name] = current()
        mine = shared                      # both frames hold the dict
        try:
            main.switch()
        finally:
            log.append((name, len(mine)))

    a, b = Fiber(body), Fiber(body)
    a.switch("a")
    b.switch("b")
    refs = [weakref.ref(a), weakref.ref(b)]
    del a, b, shared
    gc.collect()
    # every finalizer runs before anything in the cycle is cleared
    assert sorted(log) == [("a", 2), ("b", 2)]
    assert all(r() is None for r in refs)


def test_cycle_through_nested_frames_and_a_parent_link():
    """A fiber suspended deep in nested calls, whose innermost frame refers
    to a child fiber whose parent is the fiber: collected in one pass, both
    finally blocks run (the child was never started: no finally there)."""
    log = []
    main = current()

    def inner(depth):
        if depth == 0:
            child = Fiber(lambda: None)      # parent: the running fiber
            holder = [child, current()]
            try:
                main.switch()
            finally:
                log.append(("inner", len(holder)))
        else:
            try:
                inner(depth - 1)
            finally:
                log.append(depth)

    f = Fiber(lambda: inner(5))
    f.switch()
    ref = weakref.ref(f)
    del f
    gc.collect()
    assert log == [("inner", 2), 1, 2, 3, 4, 5]
    assert ref() is None


def test_object_referenced_only_by_a_suspended_frame_stays_alive():
    """Not garbage: a suspended fiber the program still holds keeps what
    its frames reference, across collections."""
    main = current()
    seen = []

    def body():
        obj = Box()
        seen.append(weakref.ref(obj))
        main.switch()
        return obj

    f = Fiber(body)
    f.switch()
    for _ in range(3):
        gc.collect()
    assert seen[0]() is not None
    assert isinstance(f.switch(), Box)


def test_fiber_that_refuses_to_die_is_freed_without_resuming():
    """A finally block that switches back out when FiberExit arrives: the
    fiber cannot be unwound.  It is finalized once (PEP 442), its finally
    block runs once, and the collector then clears the cycle: the fiber is
    freed suspended, its frames abandoned, never resumed.  (Under the
    sanitizer lane this also proves no memory error in that path.)"""
    log = []
    main = current()

    def body():
        me = current()
        try:
            main.switch()
        finally:
            log.append("finally")
            main.switch("escaped")
            log.append("resumed after escape")       # never runs

    f = Fiber(body)
    f.switch()
    ref = weakref.ref(f)
    del f
    gc.collect()
    gc.collect()
    assert log == ["finally"]
    assert ref() is None
    g = Fiber(lambda x: main.switch(x * 2) + 1)
    assert g.switch(4) == 8 and g.switch(1) == 2 and g.dead
