"""Fuzz the public API of pycoro with hypothesis: every Fiber method and
attribute and module function, with wrong types, huge/negative numbers,
None, and objects whose __eq__/__hash__/__del__/__repr__ raise or switch
fibers.  Anything but a crash is fine: a Python exception or a result.
Run as a script (tests/reliability/test_fuzz.py runs it in a subprocess and
reports a crash with its output); prints the seed and the number of cases.

Deterministic: hypothesis draws from the seed in PYCORO_FUZZ_SEED (default
0) and keeps no example database, so a run is reproduced by its seed:
    PYCORO_FUZZ_SEED=<seed> FUZZ_EXAMPLES=<n> python tests/reliability/fuzz_api.py"""
import gc
import hashlib
import os
import sys

from hypothesis import HealthCheck, given, seed, settings, strategies as st

import pycoro
from pycoro import Fiber, FiberError, FiberExit, current

MAIN = current()
CASES = [0]
SEED = int(os.environ.get("PYCORO_FUZZ_SEED", "0"))
# digest of every drawn case's shape (kind, method, attribute, argument
# types): the same seed must give the same digest (test_fuzz.py checks)
DIGEST = hashlib.sha256()


class Nasty:
    def __init__(self, mode):
        self.mode = mode

    def _act(self):
        if self.mode == "raise":
            raise RuntimeError("nasty")
        if self.mode == "switch":
            f = Fiber(lambda *a, **k: MAIN.switch("from nasty"))
            f.switch()
            return 1
        if self.mode == "exit":
            raise FiberExit()
        return 0

    def __eq__(self, other):
        self._act()
        return False

    def __hash__(self):
        return self._act()

    def __repr__(self):
        self._act()
        return "Nasty"

    def __call__(self, *a, **k):
        self._act()
        return a

    def __index__(self):
        self._act()
        return 1

    def __del__(self):
        try:
            self._act()
        except BaseException:
            raise


class NastyFiber(Fiber):
    def __del__(self):
        raise RuntimeError("fiber __del__")


def some_fiber(kind):
    if kind == "new":
        return Fiber(lambda *a, **k: a)
    if kind == "suspended":
        f = Fiber(lambda *a, **k: MAIN.switch("s") or MAIN.switch("t"))
        f.switch()
        return f
    if kind == "dead":
        f = Fiber(lambda: 1)
        f.switch()
        return f
    if kind == "main":
        return MAIN
    if kind == "subclass":
        f = NastyFiber(lambda *a: MAIN.switch(a))
        f.switch()
        return f
    raise AssertionError(kind)


values = st.deferred(lambda: st.one_of(
    st.none(), st.booleans(),
    st.integers(), st.sampled_from([2**63, -2**63 - 1, 2**64, -1, 0, 10**100]),
    st.floats(allow_nan=True), st.text(max_size=5), st.binary(max_size=5),
    st.sampled_from(["raise", "switch", "exit", "none"]).map(Nasty),
    st.sampled_from([ValueError, FiberExit, KeyboardInterrupt, SystemExit, GeneratorExit,
                     BaseException, Exception, int, object, type]),
    st.builds(ValueError, st.text(max_size=3)),
    st.sampled_from(["new", "suspended", "dead", "main", "subclass"]).map(some_fiber),
    st.tuples(values), st.lists(values, max_size=2),
    st.dictionaries(st.text(max_size=2), values, max_size=2),
))
fiber_kinds = st.sampled_from(["new", "suspended", "dead", "main", "subclass"])
ATTRS = ["run", "parent", "dead", "started", "frame", "context", "stack_saved", "is_main",
         "__dict__", "gr_frame", "nonexistent"]


def call(fn, /, *a, **k):
    CASES[0] += 1
    try:
        fn(*a, **k)
    except BaseException:
        pass
    # whatever happened, we are back in main, and it still switches
    assert current() is MAIN, current()


@seed(SEED)
@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")), deadline=None,
          database=None, suppress_health_check=list(HealthCheck))
@given(kind=fiber_kinds, method=st.sampled_from(["switch", "throw", "getattr", "setattr",
                                                  "delattr", "init", "new", "module",
                                                  "repr", "bool", "eq", "hash"]),
       args=st.lists(values, max_size=4), kwargs=st.dictionaries(st.text(max_size=3), values,
                                                                 max_size=2),
       attr=st.sampled_from(ATTRS))
def fuzz(kind, method, args, kwargs, attr):
    DIGEST.update(repr((kind, method, attr, [type(a).__name__ for a in args],
                        sorted(kwargs))).encode())
    f = some_fiber(kind)
    if method == "switch":
        call(f.switch, *args, **kwargs)
    elif method == "throw":
        call(f.throw, *args, **kwargs)
    elif method == "getattr":
        call(getattr, f, attr)
    elif method == "setattr":
        call(setattr, f, attr, args[0] if args else None)
    elif method == "delattr":
        call(delattr, f, attr)
    elif method == "init":
        call(f.__init__, *args, **kwargs)
    elif method == "new":
        call(Fiber, *args, **kwargs)
        call(Fiber.__new__, Fiber, *args, **kwargs)
    elif method == "module":
        name = ["current", "settrace", "gettrace", "_inject_alloc_failure"][len(args) % 4]
        fn = getattr(pycoro._pycoro, name)
        if name == "_inject_alloc_failure":
            call(fn, *args[:1], **kwargs)
            pycoro._pycoro._inject_alloc_failure(0)
        elif name == "settrace":
            call(fn, *args, **kwargs)
            # a tracer that is not callable is refused; a callable one runs
            # on the next switches: leave it for one switch, then remove
            call(Fiber(lambda: None).switch)
            pycoro.settrace(None)
        else:
            call(fn, *args, **kwargs)
    elif method == "repr":
        call(repr, f)
    elif method == "bool":
        call(bool, f)
    elif method == "eq":
        call(lambda: f == (args[0] if args else None))
    elif method == "hash":
        call(hash, f)
    # end the fiber if we can, then let everything go
    if kind in ("suspended", "subclass") and f:
        call(f.throw)
    del f
    gc.collect()


if __name__ == "__main__":
    # the Nasty objects' __del__ raise RuntimeError/FiberExit (or a
    # FiberError from switching inside a finalizer) on purpose: those are
    # expected; any other unraisable error is printed as usual
    def unraisable(u, expected=(RuntimeError, FiberExit, FiberError)):
        if not issubclass(u.exc_type, expected):
            sys.__unraisablehook__(u)
    sys.unraisablehook = unraisable
    print(f"fuzz seed: {SEED} (PYCORO_FUZZ_SEED={SEED} reproduces this run)", flush=True)
    fuzz()
    print(f"fuzz cases: {CASES[0]}")
    print(f"fuzz digest: {DIGEST.hexdigest()[:16]}")
