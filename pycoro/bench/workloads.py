"""The workloads of `python -m pycoro bench`, run in its worker processes
(workers.py) and by bench/test_fiber_bench.py: every workload takes an
`Impl` (pycoro or greenlet behind the same names), so the two
implementations run exactly the same Python code.  Timing workloads return
nanoseconds per operation.

Owns: the timing loop (calibrated loops, warm-ups, samples that are each the
fastest of a few bursts) and the fibers it times.  May call: pycoro and
greenlet, loaded by load_impl only (nothing at module level).
"""
import gc
import os
import sys
import time
from collections import namedtuple

_ns = time.perf_counter_ns

# A timing sample is the fastest of BURSTS short bursts of the same work: on
# a shared 2-vCPU VM a burst is often slowed 2-10x by preemption or by the
# other tenant of the core; the fastest burst is the one that ran alone.
# The callers then take medians over many such samples.
BURSTS = 5


class Impl(namedtuple("Impl", "name Fiber current FiberExit saved_attr version")):
    """One implementation under a common set of names."""

    __slots__ = ()

    def stack_saved(self, f):
        return getattr(f, self.saved_attr, None)

    def __repr__(self):
        return "<Impl %s %s>" % (self.name, self.version)


def load_impl(name):
    """`pycoro` or `greenlet`; ImportError if it is not installed."""
    if name == "pycoro":
        import pycoro

        return Impl("pycoro", pycoro.Fiber, pycoro.current, pycoro.FiberExit,
                    "stack_saved", pycoro.__version__)
    if name == "greenlet":
        import greenlet

        return Impl("greenlet", greenlet.greenlet, greenlet.getcurrent,
                    greenlet.GreenletExit, "_stack_saved", greenlet.__version__)
    raise ValueError("unknown implementation %r (pycoro or greenlet)" % (name,))


# ---------------------------------------------------------------- helpers

def _descend(k, bottom):
    """Call `bottom()` from k + 1 Python frames (this function's own) below
    the caller; `bottom` is a C function (a bound switch)."""
    if k > 0:
        return _descend(k - 1, bottom)
    return bottom()


def _descend_loop(k, sw):
    """Like _descend, but the deepest frame switches out forever."""
    if k > 0:
        return _descend_loop(k - 1, sw)
    while True:
        sw()


def fiber_at_depth(impl, depth, loop):
    """A started fiber suspended with `depth` Python frames of its own (the
    run function counts as one).  loop=True: every switch into it comes
    straight back (ping-pong partner); loop=False: the first switch in lets
    it finish.
    """
    sw = impl.current().switch
    descend = _descend_loop if loop else _descend
    if depth < 2:
        if loop:
            def run():
                while True:
                    sw()
        else:
            def run():
                return sw()
    else:
        def run():
            return descend(depth - 2, sw)  # run + (depth - 1) frames = depth
    f = impl.Fiber(run)
    f.switch()
    return f


def _rss_bytes():
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        # Peak, not current: good enough where /proc is missing.
        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _kill(f):
    f.throw()
    if not f.dead:
        raise RuntimeError("fiber did not die on throw()")


# ---------------------------------------------------------------- timing

def timed(burst, unit, values, warmups=1, min_ns=2.5e5):
    """pyperf's loop, on a shared machine: `burst(loops)` runs `loops` times
    an operation block of `unit` operations and returns the ns it took.
    Calibration doubles `loops` until one burst lasts `min_ns` (0.25 ms:
    the timer's ~30 ns resolution is then < 0.1 %, and a burst still fits
    between two preemptions of a loaded machine, whose time slices are a few
    ms; 5 ms bursts measured 2x slower than 0.5 ms ones under a load of 5 on
    2 cores); `warmups` samples are taken and thrown away; then `values`
    samples, each the fastest of BURSTS bursts, in ns per operation."""
    loops = 1
    while burst(loops) < min_ns and loops < 1 << 24:
        loops *= 2

    def sample():
        return min(burst(loops) for _ in range(BURSTS)) / (loops * unit)

    for _ in range(warmups):
        sample()
    return {"samples": [sample() for _ in range(values)], "loops": loops * unit}


def _switch_burst(sw):
    def burst(loops):
        t0 = _ns()
        for _ in range(loops):
            sw(); sw(); sw(); sw(); sw(); sw(); sw(); sw(); sw(); sw()  # noqa: E702
        return _ns() - t0
    return burst


def roundtrip(impl, values, depth=1, **kw):
    """ns per round trip main -> fiber -> main (`f.switch()` ping-pong), the
    fiber suspended at Python depth `depth`."""
    f = fiber_at_depth(impl, depth, loop=True)
    out = timed(_switch_burst(f.switch), 10, values, **kw)
    _kill(f)
    return out


def roundtrip_generator_ns(n):
    """The same ping-pong with a plain generator (`gen.send`)."""
    def gen():
        while True:
            yield

    g = gen()
    next(g)
    sw = g.send
    loops = max(1, n // 10)
    t0 = _ns()
    for _ in range(loops):
        sw(None); sw(None); sw(None); sw(None); sw(None)  # noqa: E702
        sw(None); sw(None); sw(None); sw(None); sw(None)  # noqa: E702
    t1 = _ns()
    g.close()
    return (t1 - t0) / (loops * 10)


def _noop(*args, **kw):
    return None


def create_run(impl, values, **kw):
    """ns per fiber: create, start, run to the end, free."""
    F = impl.Fiber
    gc.collect()

    def burst(loops):
        t0 = _ns()
        for _ in range(loops):
            F(_noop).switch()
        return _ns() - t0
    return timed(burst, 1, values, **kw)


def create_run_generator_ns(n):
    def gen():
        return
        yield  # pragma: no cover

    t0 = _ns()
    for _ in range(n):
        next(gen(), None)
    t1 = _ns()
    return (t1 - t0) / n


def suspended_create_free(impl, n, depth=5):
    """Create n fibers suspended at Python depth `depth`, then free them (each
    is unwound by FiberExit).  Returns (create_ns, free_ns) totals; checks
    that every fiber was really unwound."""
    main = impl.current()
    Fiber = impl.Fiber
    unwound = [0]
    bottom = main.switch

    def run():
        try:
            _descend(depth - 2, bottom)
        except impl.FiberExit:
            unwound[0] += 1
            raise

    times = _suspend_then_free(n, Fiber, (run,), Fiber.switch)
    if unwound[0] != n:
        raise RuntimeError("%d of %d suspended %s fibers were unwound by %s on free"
                           % (unwound[0], n, impl.name, impl.FiberExit.__name__))
    return times


def suspended_generators(n, depth=5):
    """Baseline: n generators suspended `depth` deep through `yield from`."""
    unwound = [0]

    def inner(k):
        if k > 0:
            yield from inner(k - 1)
        else:
            yield

    def outer():
        try:
            yield from inner(depth - 2)
        except GeneratorExit:
            unwound[0] += 1
            raise

    times = _suspend_then_free(n, outer, (), next)
    if unwound[0] != n:
        raise RuntimeError("%d of %d generators were closed" % (unwound[0], n))
    return times


def _suspend_then_free(n, make, args, start):
    """Makes n objects (make(*args)), starts each (start(obj): it runs until
    it suspends) and keeps them; then drops them all.  Returns the two times
    in ns: making and starting, freeing (the collection included)."""
    held = [None] * n
    gc.collect()
    t0 = _ns()
    for i in range(n):
        obj = make(*args)
        start(obj)
        held[i] = obj
    t1 = _ns()
    obj = held = None  # noqa: F841  (dropping the list frees every object)
    gc.collect()
    t2 = _ns()
    return t1 - t0, t2 - t1


def reentry_fiber(impl, width=64):
    """A started fiber that switches out from inside `sorted(key=...)`: the
    interpreter was re-entered from C, so the fiber's saved C stack holds a
    whole eval-loop recursion.  Every switch into it comes straight back."""
    sw = impl.current().switch
    data = list(range(width))

    def key(x):
        return sw(x)

    def run():
        while True:
            sorted(data, key=key)

    f = impl.Fiber(run)
    f.switch()
    return f


def reentry(impl, values, width=64, **kw):
    """ns per round trip main -> fiber -> main, the fiber inside sorted(key=)."""
    f = reentry_fiber(impl, width)
    out = timed(_switch_burst(f.switch), 10, values, **kw)
    out["stack_saved"] = impl.stack_saved(f)
    _kill(f)
    return out
