"""Randomized stress: random graphs of fibers (switch, throw, parent changes,
dropping the last reference, gc.collect) checked step by step against the
pure-Python model in model.py, in one thread (hypothesis' stateful testing)
and in several threads at once.

Sizes: PYCORO_TEST_SCALE scales the example counts (CI: a few thousand
examples in about a minute); PYCORO_SOAK=1 runs a long soak instead.  CI
runs a fixed (derandomized) sequence of examples, so that its result does
not depend on the day's luck; the soak explores with fresh random examples.
Each test prints how many examples and operations it ran.
"""
import gc
import os
import sys
import threading

from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.platform_support import SCALE
from tests.reliability.model import World

SOAK = os.environ.get("PYCORO_SOAK", "") not in ("", "0")


def n_examples(ci):
    return 50 * ci if SOAK else max(10, int(ci * SCALE))


COUNTS = {"examples": 0, "ops": 0}

ids = st.integers(min_value=0, max_value=9)
payloads = st.integers(min_value=-3, max_value=3)
OP = st.one_of(
    st.tuples(st.just("switch"), ids, payloads),
    st.tuples(st.just("throw"), ids, payloads, st.booleans()),
    st.tuples(st.just("return"), payloads),
    st.tuples(st.just("raise"), payloads),
    st.tuples(st.just("hold"), ids),
    st.tuples(st.just("parent"), ids, ids),
    st.tuples(st.just("drop"), ids),
    st.tuples(st.just("new"), ids),
    st.just(("collect",)),
)


class FiberGraph(RuleBasedStateMachine):
    """One thread: hypothesis picks the operations and shrinks failures."""

    def __init__(self):
        super().__init__()
        # Everything older than this example goes to the permanent
        # generation: gc.collect() then only walks this example's objects
        # (a full collection of the test process costs milliseconds).
        gc.freeze()
        self.world = World()
        COUNTS["examples"] += 1

    @initialize()
    def some_fibers(self):
        for _ in range(3):
            self.world.new_fiber()

    def _apply(self, op):
        COUNTS["ops"] += 1
        self.world.apply(op)

    @rule(t=ids, p=payloads)
    def switch(self, t, p):
        self._apply(("switch", t, p))

    @rule(t=ids, code=payloads, exit=st.booleans())
    def throw(self, t, code, exit):
        self._apply(("throw", t, code, exit))

    @rule(r=payloads)
    def finish(self, r):
        self._apply(("return", r))

    @rule(code=payloads)
    def fail(self, code):
        self._apply(("raise", code))

    @rule(t=ids)
    def hold(self, t):
        self._apply(("hold", t))

    @rule(i=ids, j=ids)
    def reparent(self, i, j):
        self._apply(("parent", i, j))

    @rule(i=ids)
    def drop(self, i):
        self._apply(("drop", i))

    @precondition(lambda self: self.world.next_id < 10)
    @rule(p=ids)
    def new(self, p):
        self._apply(("new", p))

    @rule()
    def collect(self):
        self._apply(("collect",))

    @invariant()
    def runs_in_main(self):
        assert self.world.active in self.world.alive

    def teardown(self):
        self.world.finish()


def test_fiber_graph_state_machine():
    was = gc.isenabled()
    gc.disable()          # collections happen where the model says, only
    try:
        FiberGraph.TestCase.settings = settings(
            max_examples=n_examples(1500),
            derandomize=not SOAK,
            stateful_step_count=40,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        before = dict(COUNTS)
        FiberGraph.TestCase().runTest()
    finally:
        gc.unfreeze()
        if was:
            gc.enable()
    print(f"\nstate machine: {COUNTS['examples'] - before['examples']} examples, "
          f"{COUNTS['ops'] - before['ops']} operations")
    assert COUNTS["examples"] - before["examples"] >= n_examples(1500) // 2


def run_world(ops, foreign, errors, barrier):
    # No collection until every thread has done its operations: any thread's
    # collection collects every thread's garbage cycles (each fiber unwound
    # later, in its own thread), which a per-thread model cannot predict.
    try:
        w = World()
        for _ in range(3):
            w.new_fiber()
        for op in ops:
            if op[0] == "foreign":
                if foreign:
                    w.apply(("foreign", foreign[0]))
                continue
            if op[0] == "collect":
                continue
            w.apply(op)
        barrier.wait()
        w.finish()
    except threading.BrokenBarrierError:
        pass                    # another thread failed: its error is reported
    except BaseException as e:  # reported by the test
        barrier.abort()
        errors.append((threading.current_thread().name, e))


def test_fiber_graphs_in_threads():
    """Several threads run their own random fiber graphs at once, with a
    tiny switch interval so the GIL changes hands inside the switches; a
    thread also tries to switch to another thread's fiber."""
    from hypothesis import given

    n_threads = 3
    done = {"examples": 0, "ops": 0}

    @settings(max_examples=n_examples(1000), deadline=None, database=None, derandomize=not SOAK,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(st.lists(st.one_of(OP, st.just(("foreign",))), max_size=40),
                    min_size=n_threads, max_size=n_threads))
    def check(programs):
        gc.freeze()
        done["examples"] += 1
        done["ops"] += sum(map(len, programs))
        errors = []
        # a fiber of this (the main) thread, for "foreign" switches
        from pycoro import Fiber
        mine = Fiber(lambda: None)
        barrier = threading.Barrier(len(programs))
        ts = [threading.Thread(target=run_world, args=(p, [mine], errors, barrier), name=f"w{k}")
              for k, p in enumerate(programs)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        if errors:
            name, e = errors[0]
            raise AssertionError(f"thread {name}: {e!r}") from e

    old = sys.getswitchinterval()
    was = gc.isenabled()
    gc.disable()
    sys.setswitchinterval(1e-5)
    try:
        check()
    finally:
        sys.setswitchinterval(old)
        gc.unfreeze()
        if was:
            gc.enable()
    print(f"\nthreads: {done['examples']} examples x {n_threads} threads, {done['ops']} operations")
    assert done["examples"] >= n_examples(1000) // 2
