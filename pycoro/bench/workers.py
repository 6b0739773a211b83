"""The worker processes of `python -m pycoro bench`: every sample the bench
judges comes from a fresh interpreter started as
`python -m pycoro.bench.workers CMD JSON`, which prints one JSON result as
its last line.  A process per sample keeps one implementation's heap (and
pycoro's data-stack chunk cache, which would serve greenlet's allocations
too) and one process's stack placement (greenlet is bimodal from process to
process) from counting for or against the other.

Owns: the memory and live-fiber workers and the dispatch to the timing
workloads, the raw core (core.py), gevent (gevent_work.py) and the
multi-hub rows (multihub_work.py).
May call: workloads, core, gevent_work, multihub_work.
"""
import gc
import json
import sys

from . import workloads as w
from .workloads import BURSTS, _ns, _rss_bytes, fiber_at_depth, load_impl


def work_roundtrip(impl_name, values, depth=1, min_ns=2.5e5):
    return w.roundtrip(load_impl(impl_name), values, depth=depth, min_ns=min_ns)


def work_reentry(impl_name, values, min_ns=2.5e5):
    return w.reentry(load_impl(impl_name), values, min_ns=min_ns)


def work_create(impl_name, values, min_ns=2.5e5):
    return w.create_run(load_impl(impl_name), values, min_ns=min_ns)


def work_suspended(impl_name, n):
    """
suspended_create_free: (create ns, free ns) totals."""
    c, f = w.suspended_create_free(load_impl(impl_name), n)
    return {"create": c, "free": f}


def work_rss(impl_name, n, depth):
    """RSS per fiber suspended at Python depth `depth` (bytes)."""
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
    return {"impl": impl.name, "version": impl.version, "n": n, "depth": depth,
            "rss_per_fiber": (after - base) / n,
            "stack_saved": (sum(saved) / len(saved)) if saved else None}


def work_live(impl_name, sizes, hot, switches, repeat):
    """Switch cost while N fibers are alive, for each N in `sizes` (growing
    one population).  The timed loop round-robins over `hot` fibers spread
    evenly through the population, so it measures what N live fibers cost
    the runtime (lists, GC, allocator) rather than the CPU cache's size.
    At the largest N: total RSS, then every fiber is resumed once and
    finished, and all must have finished."""
    impl = load_impl(impl_name)
    sw = impl.current().switch
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
        per_burst = max(1, switches // k // BURSTS)
        samples = []
        for _ in range(repeat):
            best = None
            for _ in range(BURSTS):
                t0 = _ns()
                for _ in range(per_burst):
                    for s in pick:
                        s(True)
                t = _ns() - t0
                best = t if best is None or t < best else best
            samples.append(best / (per_burst * k))
        out.append({"n": size, "samples": samples, "create_s": t_create / 1e9})
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
    return {"impl": impl.name, "version": impl.version, "points": out, "alive": n,
            "rss_total": rss, "rss_delta": rss - rss0, "finish_s": t_finish / 1e9}


WORKERS = {"roundtrip": work_roundtrip, "reentry": work_reentry, "create": work_create,
           "suspended": work_suspended, "rss": work_rss, "live": work_live}


def _worker(cmd):
    if cmd == "core":
        from . import core
        return core.work_core
    if cmd.startswith("mh_"):
        from . import multihub_work
        return multihub_work.WORKERS[cmd]
    if cmd.startswith("gevent_"):
        from . import gevent_work
        return gevent_work.WORKERS[cmd]
    return WORKERS[cmd]


def main(argv):
    cmd, kwargs = argv[0], json.loads(argv[1])
    result = _worker(cmd)(**kwargs)
    sys.stdout.write("\n" + json.dumps(result) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
