"""Hub benchmarks: pycoro's hub against gevent and asyncio, same workloads,
one pytest-benchmark group per workload (issue 4).

    python3 -m pytest bench/test_hub_bench.py --benchmark-only

Sizes (env): PYCORO_HUB_BENCH_TASKS (10000) tasks x PYCORO_HUB_BENCH_YIELDS
(100) sleep(0) each; PYCORO_HUB_BENCH_SPAWN (100000) tasks spawned then
joined; PYCORO_HUB_BENCH_STAGES (1000) pipeline stages carrying
PYCORO_HUB_BENCH_MESSAGES (100) values; PYCORO_HUB_BENCH_ROUNDS (5) rounds.
Without explicit sizes, PYCORO_BENCH_SCALE multiplies the task counts.
Target: pycoro <= 1/3 of gevent's time for sleep(0) round-robin and spawn+join.
"""
import asyncio
import os

import pytest

import pycoro

gevent = pytest.importorskip("gevent")
import gevent.queue  # noqa: E402


# PYCORO_BENCH_SCALE (shared with bench/test_fiber_bench.py) scales the task
# counts when no explicit size is given.
_SCALE = float(os.environ.get("PYCORO_BENCH_SCALE", "1"))


def _env(name, default, scale=True):
    if name in os.environ:
        return int(os.environ[name])
    return max(10, int(default * _SCALE)) if scale else default


TASKS = _env("PYCORO_HUB_BENCH_TASKS", 10_000)
YIELDS = _env("PYCORO_HUB_BENCH_YIELDS", 100, scale=False)
SPAWN = _env("PYCORO_HUB_BENCH_SPAWN", 100_000)
STAGES = _env("PYCORO_HUB_BENCH_STAGES", 1_000)
MESSAGES = _env("PYCORO_HUB_BENCH_MESSAGES", 100, scale=False)
ROUNDS = _env("PYCORO_HUB_BENCH_ROUNDS", 5, scale=False)


def _bench(benchmark, fn, expected):
    result = benchmark.pedantic(fn, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert result == expected


# ------------------------------------------------------------ sleep(0) round-robin

def rr_pycoro():
    sleep = pycoro.sleep
    counter = [0]

    def worker():
        for _ in range(YIELDS):
            sleep(0)
        counter[0] += 1

    def main():
        spawn = pycoro.spawn
        tasks = [spawn(worker) for _ in range(TASKS)]
        for t in tasks:
            t.join()
        return counter[0]

    return pycoro.run(main)


def rr_gevent():
    sleep = gevent.sleep
    counter = [0]

    def worker():
        for _ in range(YIELDS):
            sleep(0)
        counter[0] += 1

    gevent.joinall([gevent.spawn(worker) for _ in range(TASKS)])
    return counter[0]


def rr_asyncio():
    counter = [0]

    async def worker():
        sleep = asyncio.sleep
        for _ in range(YIELDS):
            await sleep(0)
        counter[0] += 1

    async def main():
        tasks = [asyncio.create_task(worker()) for _ in range(TASKS)]
        for t in tasks:
            await t
        return counter[0]

    return asyncio.run(main())


@pytest.mark.benchmark(group=f"sleep(0) round-robin: {TASKS} tasks x {YIELDS}")
@pytest.mark.parametrize("impl", [rr_pycoro, rr_gevent, rr_asyncio], ids=["pycoro", "gevent", "asyncio"])
def test_round_robin(benchmark, impl):
    _bench(benchmark, impl, TASKS)


# ------------------------------------------------------------ spawn + join

def _job(i):
    return i


def sj_pycoro():
    def main():
        spawn = pycoro.spawn
        tasks = [spawn(_job, i) for i in range(SPAWN)]
        total = 0
        for t in tasks:
            total += t.join()
        return total

    return pycoro.run(main)


def sj_gevent():
    spawn = gevent.spawn
    tasks = [spawn(_job, i) for i in range(SPAWN)]
    total = 0
    for t in tasks:
        total += t.get()
    return total


def sj_asyncio():
    async def job(i):
        return i

    async def main():
        create = asyncio.create_task
        tasks = [create(job(i)) for i in range(SPAWN)]
        total = 0
        for t in tasks:
            total += await t
        return total

    return asyncio.run(main())


@pytest.mark.benchmark(group=f"spawn+join: {SPAWN} tasks")
@pytest.mark.parametrize("impl", [sj_pycoro, sj_gevent, sj_asyncio], ids=["pycoro", "gevent", "asyncio"])
def test_spawn_join(benchmark, impl):
    _bench(benchmark, impl, SPAWN * (SPAWN - 1) // 2)


# ------------------------------------------------------------ channel pipeline
# STAGES tasks chained by one-slot channels; MESSAGES values each get +1 per
# stage; None ends the stream.

def pipe_pycoro():
    def stage(inp, out):
        recv, send = inp.recv, out.send
        while True:
            v = recv()
            if v is None:
                send(None)
                return
            send(v + 1)

    def main():
        first = prev = pycoro.Channel(1)
        for _ in range(STAGES):
            nxt = pycoro.Channel(1)
            pycoro.spawn(stage, prev, nxt)
            prev = nxt

        def feed():
            for i in range(MESSAGES):
                first.send(i)
            first.send(None)

        pycoro.spawn(feed)
        total = 0
        while (v := prev.recv()) is not None:
            total += v
        return total

    return pycoro.run(main)


def pipe_gevent():
    Q = gevent.queue.Queue

    def stage(inp, out):
        get, put = inp.get, out.put
        while True:
            v = get()
            if v is None:
                put(None)
                return
            put(v + 1)

    first = prev = Q(1)
    for _ in range(STAGES):
        nxt = Q(1)
        gevent.spawn(stage, prev, nxt)
        prev = nxt

    def feed():
        for i in range(MESSAGES):
            first.put(i)
        first.put(None)

    gevent.spawn(feed)
    total = 0
    while (v := prev.get()) is not None:
        total += v
    return total


def pipe_asyncio():
    async def stage(inp, out):
        get, put = inp.get, out.put
        while True:
            v = await get()
            if v is None:
                await put(None)
                return
            await put(v + 1)

    async def main():
        first = prev = asyncio.Queue(1)
        tasks = []
        for _ in range(STAGES):
            nxt = asyncio.Queue(1)
            tasks.append(asyncio.create_task(stage(prev, nxt)))
            prev = nxt

        async def feed():
            for i in range(MESSAGES):
                await first.put(i)
            await first.put(None)

        tasks.append(asyncio.create_task(feed()))
        total = 0
        while (v := await prev.get()) is not None:
            total += v
        await asyncio.gather(*tasks)
        return total

    return asyncio.run(main())


@pytest.mark.benchmark(group=f"channel pipeline: {STAGES} stages x {MESSAGES} values")
@pytest.mark.parametrize("impl", [pipe_pycoro, pipe_gevent, pipe_asyncio], ids=["pycoro", "gevent", "asyncio"])
def test_pipeline(benchmark, impl):
    _bench(benchmark, impl, sum(range(MESSAGES)) + MESSAGES * STAGES)
