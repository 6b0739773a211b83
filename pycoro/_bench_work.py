"""Workloads for `python -m pycoro bench` (see pycoro/_bench.py).

Every workload takes an `Impl` (pycoro or greenlet behind the same names), so
the two implementations run exactly the same Python code.  Timing workloads
return nanoseconds; memory workloads run in a fresh interpreter each
(`python -m pycoro._bench_work CMD JSON`) so that the heap one implementation
leaves behind never counts against the other.

Nothing here imports greenlet or pycoro at module level: `load_impl` does.
"""
import gc
import json
import os
import sys
import time

_ns = time.perf_counter_ns

# A timing sample is the fastest of BURSTS short bursts of the same work: on
# a shared 2-vCPU VM a burst is often slowed 2-10x by preemption or by the
# other tenant of the core; the fastest burst is the one that ran alone.
# The callers then take medians over many such samples.
BURSTS = 5


class Impl:
    """One implementation under a common set of names."""

    def __init__(self, name, Fiber, current, FiberExit, saved_attr, version):
        self.name = name
        self.Fiber = Fiber
        self.current = current
        self.FiberExit = FiberExit
        self.saved_attr = saved_attr
        self.version = version

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

def roundtrip_ns(impl, n, depth=1):
    """ns per round trip main -> fiber -> main (`f.switch()` ping-pong), the
    fiber suspended at Python depth `depth`."""
    f = fiber_at_depth(impl, depth, loop=True)
    sw = f.switch
    loops = max(1, n // (10 * BURSTS))
    best = None
    for _ in range(BURSTS):
        t0 = _ns()
        for _ in range(loops):
            sw(); sw(); sw(); sw(); sw(); sw(); sw(); sw(); sw(); sw()  # noqa: E702
        t = _ns() - t0
        best = t if best is None or t < best else best
    _kill(f)
    return best / (loops * 10)


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


def create_run_ns(impl, n):
    """ns per fiber: create, start, run to the end, free."""
    F = impl.Fiber
    gc.collect()
    k = max(1, n // BURSTS)
    best = None
    for _ in range(BURSTS):
        t0 = _ns()
        for _ in range(k):
            F(_noop).switch()
        t = _ns() - t0
        best = t if best is None or t < best else best
    return best / k


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

    fibers = [None] * n
    gc.collect()
    t0 = _ns()
    for i in range(n):
        f = Fiber(run)
        f.switch()
        fibers[i] = f
    t1 = _ns()
    f = None
    fibers = None  # noqa: F841  (dropping the list frees every fiber)
    gc.collect()
    t2 = _ns()
    if unwound[0] != n:
        raise RuntimeError("%d of %d suspended %s fibers were unwound by %s on free"
                           % (unwound[0], n, impl.name, impl.FiberExit.__name__))
    return t1 - t0, t2 - t1


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

    gens = [None] * n
    gc.collect()
    t0 = _ns()
    for i in range(n):
        g = outer()
        next(g)
        gens[i] = g
    t1 = _ns()
    g = None
    gens = None  # noqa: F841
    gc.collect()
    t2 = _ns()
    if unwound[0] != n:
        raise RuntimeError("%d of %d generators were closed" % (unwound[0], n))
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


def reentry_ns(impl, n, width=64):
    """ns per round trip main -> fiber -> main, the fiber inside sorted(key=)."""
    f = reentry_fiber(impl, width)
    fs = f.switch
    loops = max(1, n // (10 * BURSTS))
    best = None
    for _ in range(BURSTS):
        t0 = _ns()
        for _ in range(loops):
            fs(); fs(); fs(); fs(); fs(); fs(); fs(); fs(); fs(); fs()  # noqa: E702
        t = _ns() - t0
        best = t if best is None or t < best else best
    saved = impl.stack_saved(f)
    _kill(f)
    return best / (loops * 10), saved


# ---------------------------------------------------------------- subprocess workers

def work_rss(impl_name, n, depth):
    """RSS per fiber suspended at Python depth `depth` (bytes), in a fresh process."""
    impl = load_impl(impl_name)
    # Warm up: first-fiber allocations (main fiber object, thread state,
    # copy buffers) are per thread, not per fiber.
    warm = [fiber_at_depth(impl, depth, loop=False) for _ in range(64)]
    warm = None  # noqa: F841
    fibers = [None] * n
    gc.collect()
    base = _rss_bytes()
    for i in range(n):
        fibers[i] = fiber_at_depth(impl, depth, loop=False)
    gc.collect()
    after = _rss_bytes()
    saved = [impl.stack_saved(f) for f in fibers[:100]]
    saved = [s for s in saved if s is not None]
    ok = 0
    for f in fibers:
        f.switch()
        ok += bool(f.dead)
    if ok != n:
        raise RuntimeError("only %d of %d fibers finished" % (ok, n))
    return {
        "impl": impl.name,
        "version": impl.version,
        "n": n,
        "depth": depth,
        "rss_per_fiber": (after - base) / n,
        "stack_saved": (sum(saved) / len(saved)) if saved else None,
    }


def work_live(impl_name, sizes, hot, switches, repeat):
    """Switch cost while N fibers are alive, for each N in `sizes` (growing
    one population).  The timed loop round-robins over `hot` fibers spread
    evenly through the population, so it measures what N live fibers cost
    the runtime (lists, GC, allocator) rather than the CPU cache's size.
    At the largest N: total RSS, then every fiber is resumed once and
    finished, and all must have finished."""
    impl = load_impl(impl_name)
    main = impl.current()
    sw = main.switch
    finished = [0]

    def run():
        while sw():
            pass
        finished[0] += 1

    gc.collect()
    rss0 = _rss_bytes()
    fibers = []
    out = []
    for size in sorted(sizes):
        t0 = _ns()
        while len(fibers) < size:
            f = impl.Fiber(run)
            f.switch()
            fibers.append(f)
        t_create = _ns() - t0
        k = min(hot, size)
        pick = [fibers[i * size // k].switch for i in range(k)]
        loops = max(1, switches // k)
        samples = []
        for _ in range(repeat):
            best = None
            for _ in range(BURSTS):
                t0 = _ns()
                for _ in range(max(1, loops // BURSTS)):
                    for s in pick:
                        s(True)
                t = _ns() - t0
                best = t if best is None or t < best else best
            samples.append(best / (max(1, loops // BURSTS) * k))
        samples.sort()
        out.append({
            "n": size,
            "ns": samples[len(samples) // 2],
            "samples": samples,
            "create_s": t_create / 1e9,
        })
    gc.collect()
    rss = _rss_bytes()
    n = len(fibers)
    t0 = _ns()
    for f in fibers:
        f.switch(False)
    t_finish = _ns() - t0
    dead = sum(1 for f in fibers if f.dead)
    if finished[0] != n or dead != n:
        raise RuntimeError("%d of %d live fibers finished (%d dead)" % (finished[0], n, dead))
    return {
        "impl": impl.name,
        "version": impl.version,
        "points": out,
        "alive": n,
        "rss_total": rss,
        "rss_delta": rss - rss0,
        "finish_s": t_finish / 1e9,
    }


def work_core(n, repeat):
    """Raw C core switch (ns per switch), through the cffi harness of the
    source checkout's tests/core: no CPython in the switched code."""
    import importlib.util

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(root, "tests", "core", "ffi_build.py")
    if not os.path.exists(path):
        return {"skipped": "needs a pycoro source checkout (csrc/ and tests/core/ffi_build.py); "
                           "not found next to %s" % (os.path.dirname(__file__),)}
    spec = importlib.util.spec_from_file_location("_pycoro_bench_ffi_build", path)
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
        built = mod.load()
    except Exception as e:  # no cffi, no C compiler, ...
        return {"skipped": "cannot build the cffi core harness (needs cffi, setuptools and a C "
                           "compiler): %s: %s" % (type(e).__name__, str(e).strip()[-300:])}
    lib = built.lib
    # The default (each fiber keeps its own FP environment; both sides
    # switch from one call site, as the binding's switches do), the FP
    # environment shared (PC_FIBER_SHARE_FPENV = 1), and the default switched
    # from two different call sites (every return is then mispredicted).
    # Interleaved, so that all see the same machine.
    # The floor: a bare register swap between two stacks (tests/core/floor.S),
    # without and with reading the FP control state.
    burst = max(1, n // BURSTS)
    variants = {
        "default": lambda: lib.fx_switch_ns(burst, 0, 0),
        "shared_fpenv": lambda: lib.fx_switch_ns(burst, 1, 0),
        "two_sites": lambda: lib.fx_switch_ns(burst, 0, 1),
        "floor": lambda: lib.fx_floor_ns(burst, 0),
        "floor_fp": lambda: lib.fx_floor_ns(burst, 1),
    }
    samples = {k: [] for k in variants}
    for _ in range(repeat):
        for name, one in variants.items():
            lib.fx_init()
            samples[name].append(min(one() for _ in range(BURSTS)))
            lib.fx_fini()
    medians = {}
    for name, v in samples.items():
        if min(v) <= 0:       # the fixtures return -1 when the fibers misbehaved
            raise RuntimeError("raw switch fixture %r failed (returned %r)" % (name, min(v)))
        v.sort()
        medians[name] = v[len(v) // 2]
    return {"ns": medians["default"], "samples": samples["default"], "n": n,
            "variants": medians, "variant_samples": samples}


def work_create(impl_name, n):
    """create_run_ns in a fresh process (see m_create in _bench.py)."""
    return {"ns": create_run_ns(load_impl(impl_name), n)}


def work_suspended(impl_name, n):
    """suspended_create_free in a fresh process: (create ns, free ns)."""
    c, f = suspended_create_free(load_impl(impl_name), n)
    return {"create": c, "free": f}


WORKERS = {"rss": work_rss, "live": work_live, "core": work_core,
           "create": work_create, "suspended": work_suspended}


def _worker(cmd):
    if cmd.startswith("gevent_"):
        from . import _bench_gevent
        return _bench_gevent.WORKERS[cmd]
    return WORKERS[cmd]


def main(argv):
    cmd, kwargs = argv[0], json.loads(argv[1])
    result = _worker(cmd)(**kwargs)
    sys.stdout.write("\n" + json.dumps(result) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
