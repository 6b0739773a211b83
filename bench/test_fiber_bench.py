"""pytest-benchmark suite: pycoro against greenlet (and plain generators
where they apply), one benchmark group per measure of issue 6.

    python3 -m pytest bench/ --benchmark-only

Sizes: PYCORO_BENCH_SCALE (float, default 1) multiplies the fiber counts and
rounds; PYCORO_BENCH_MAX_LIVE caps the live-fiber populations (default
10^6).  `python -m pycoro bench` runs the same workloads with medians and
targets; this suite is for pytest-benchmark's comparisons and history.
"""
import itertools
import os
import sys

import pytest

from pycoro.bench import workloads as work

SCALE = float(os.environ.get("PYCORO_BENCH_SCALE", "1"))
MAX_LIVE = int(os.environ.get("PYCORO_BENCH_MAX_LIVE", str(10 ** 6)))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def scaled(n, minimum=10):
    return max(minimum, int(n * SCALE))


SUSPENDED_N = scaled(100_000)
LIVE_SIZES = sorted({min(10 ** k, MAX_LIVE) for k in (2, 4, 6)})


@pytest.fixture(params=["pycoro", "greenlet"])
def impl(request):
    try:
        return work.load_impl(request.param)
    except ImportError as e:
        pytest.skip("%s is not installed: %s" % (request.param, e))


# ---------------------------------------------------------------- switch round trip

@pytest.mark.benchmark(group="switch round trip main->fiber->main")
def test_roundtrip(benchmark, impl):
    f = work.fiber_at_depth(impl, 1, loop=True)
    benchmark(f.switch)
    f.throw()
    assert f.dead


@pytest.mark.benchmark(group="switch round trip main->fiber->main")
def test_roundtrip_generator(benchmark):
    def gen():
        while True:
            yield

    g = gen()
    next(g)
    benchmark(g.send, None)
    g.close()


# ---------------------------------------------------------------- create + run + free

@pytest.mark.benchmark(group="create+start+run to end+free")
def test_create_run_free(benchmark, impl):
    F, noop = impl.Fiber, work._noop

    def one():
        F(noop).switch()

    benchmark(one)


@pytest.mark.benchmark(group="create+start+run to end+free")
def test_create_run_free_generator(benchmark):
    def gen():
        return
        yield  # pragma: no cover

    benchmark(lambda: next(gen(), None))


# ---------------------------------------------------------------- 100k suspended at depth 5

@pytest.mark.benchmark(group="create %d fibers at depth 5 + free" % SUSPENDED_N)
def test_suspended_depth5(benchmark, impl):
    # suspended_create_free raises unless FiberExit unwound every fiber.
    benchmark.extra_info["n"] = SUSPENDED_N
    benchmark.pedantic(work.suspended_create_free, args=(impl, SUSPENDED_N),
                       rounds=max(2, int(5 * min(1, SCALE))), iterations=1)


@pytest.mark.benchmark(group="create %d fibers at depth 5 + free" % SUSPENDED_N)
def test_suspended_depth5_generator(benchmark):
    benchmark.extra_info["n"] = SUSPENDED_N
    benchmark.pedantic(work.suspended_generators, args=(SUSPENDED_N,),
                       rounds=max(2, int(5 * min(1, SCALE))), iterations=1)


# ---------------------------------------------------------------- C re-entry

@pytest.mark.benchmark(group="switch inside sorted(key=...) (C re-entry)")
def test_switch_reentry(benchmark, impl):
    # No generator baseline: a generator cannot suspend inside a C call.
    f = work.reentry_fiber(impl)
    benchmark.extra_info["stack_saved"] = impl.stack_saved(f)
    benchmark(f.switch)
    f.throw()
    assert f.dead


# ---------------------------------------------------------------- live fibers

@pytest.mark.parametrize("n_live", LIVE_SIZES)
def test_switch_live_fibers(benchmark, impl, n_live):
    """Round-robin over 100 fibers spread through N live ones: flat in N?"""
    benchmark.group = "switch with %s live fibers" % format(n_live, ",")
    sw = impl.current().switch
    finished = [0]

    def run():
        while sw():
            pass
        finished[0] += 1

    fibers = []
    for _ in range(n_live):
        f = impl.Fiber(run)
        f.switch()
        fibers.append(f)
    k = min(100, n_live)
    nxt = itertools.cycle([fibers[i * n_live // k].switch for i in range(k)]).__next__
    benchmark(lambda: nxt()(True))
    for f in fibers:
        f.switch(False)
    assert finished[0] == n_live


@pytest.mark.parametrize("n_live", LIVE_SIZES)
def test_switch_live_generators(benchmark, n_live):
    benchmark.group = "switch with %s live fibers" % format(n_live, ",")

    def gen():
        while (yield):
            pass

    gens = []
    for _ in range(n_live):
        g = gen()
        next(g)
        gens.append(g)
    k = min(100, n_live)
    nxt = itertools.cycle([gens[i * n_live // k].send for i in range(k)]).__next__
    benchmark(lambda: nxt()(True))
    for g in gens:
        g.close()


# ---------------------------------------------------------------- raw C core

@pytest.fixture(scope="module")
def core_lib():
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    try:
        from tests.core import ffi_build

        return ffi_build.load().lib
    except Exception as e:  # no cffi / no C compiler
        pytest.skip("cannot build the cffi core harness: %s: %s" % (type(e).__name__, e))


@pytest.mark.benchmark(group="raw C core switch (cffi, no Python)")
@pytest.mark.parametrize("flags, two_sites", [(0, 0), (1, 0), (0, 1)],
                         ids=["default", "shared_fpenv", "two_call_sites"])
def test_core_switch(benchmark, core_lib, flags, two_sites):
    # flags 1 = PC_FIBER_SHARE_FPENV; see fx_switch_ns in tests/core/fixtures.c
    n = scaled(1_000_000, minimum=1000)
    per_switch = []

    def one():
        core_lib.fx_init()
        per_switch.append(core_lib.fx_switch_ns(n, flags, two_sites))
        core_lib.fx_fini()

    benchmark.pedantic(one, rounds=5, iterations=1)
    per_switch.sort()
    benchmark.extra_info["switches_per_round"] = n
    benchmark.extra_info["ns_per_switch_median"] = per_switch[len(per_switch) // 2]
    assert core_lib.fx_live_blocks() == 0


@pytest.mark.benchmark(group="raw C core switch (cffi, no Python)")
@pytest.mark.parametrize("fp", [0, 1], ids=["floor", "floor_fp_read"])
def test_floor_swap(benchmark, core_lib, fp):
    # the reference point: a bare register swap between two stacks
    # (tests/core/floor.S), nothing copied; fp also reads MXCSR/x87 or FPCR
    n = scaled(1_000_000, minimum=1000)
    per_switch = []
    benchmark.pedantic(lambda: per_switch.append(core_lib.fx_floor_ns(n, fp)), rounds=5, iterations=1)
    per_switch.sort()
    benchmark.extra_info["ns_per_switch_median"] = per_switch[len(per_switch) // 2]
    assert per_switch[0] > 0
