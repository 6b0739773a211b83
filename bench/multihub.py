"""Several hubs (pycoro.run(..., hubs=N)) against threads, processes and asyncio.

    python bench/multihub.py [--runs N] [--quick] [config ...]

Each configuration runs in a fresh process, `--runs` times (default 5); the
script prints, per configuration, the median with the spread (min-max) and
the ratios the issue asks for:

  fan-out   100 tasks of pure-Python work (a loop of integer arithmetic),
            spawned and joined: pycoro on 1 and on 2 hubs, a 2-thread
            ThreadPoolExecutor, a 2-process multiprocessing.Pool (its start
            excluded), and the plain serial loop.  Seconds, lower is better.
  ping-pong one value bounced between two parties on two threads:
            pycoro tasks on hub 0 and hub 1 over two unbuffered Channels,
            two threads over two queue.Queue, two asyncio loops (two
            threads) answering each other with call_soon_threadsafe.
            Microseconds per round trip, lower is better.
  stream    items sent one way, party A on one thread to party B on another:
            a Channel(256) across hubs, a queue.Queue(256) between threads,
            call_soon_threadsafe(asyncio.Queue.put_nowait) between loops.
            Thousands of items per second, higher is better.

`rows(runs, quick)` returns the same numbers as
[(name, median, low, high, unit)] for `python -m pycoro bench`.
"""
import json
import statistics
import subprocess
import sys
import time

WORK = 60_000          # loop iterations per fan-out task
TASKS = 100
ROUND_TRIPS = 20_000
ITEMS = 100_000


def _work(n=None):
    if n is None:
        n = WORK
    s = 0
    for i in range(n):
        s += i * i % 7
    return s


# -- fan-out ------------------------------------------------------------------
def fanout_pycoro(hubs):
    import pycoro

    def main():
        ts = [pycoro.spawn_on(i % hubs, _work) for i in range(TASKS)]
        return sum(t.join() for t in ts)

    t0 = time.perf_counter()
    total = pycoro.run(main, hubs=hubs)
    dt = time.perf_counter() - t0
    assert total == _work() * TASKS
    return dt


def _timed_map(map_fn):
    """Seconds `map_fn(_work, [WORK] * TASKS)` takes (its result checked)."""
    t0 = time.perf_counter()
    total = sum(map_fn(_work, [WORK] * TASKS))
    dt = time.perf_counter() - t0
    assert total == _work() * TASKS
    return dt


def fanout_threads():
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(2) as ex:
        return _timed_map(ex.map)


def fanout_processes():
    import multiprocessing
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pool.map(abs, range(2))  # both workers up: the pool's start is not measured
        return _timed_map(pool.map)


def fanout_serial():
    return _timed_map(map)


# -- ping-pong (microseconds per round trip) ----------------------------------
def _bounce(send, recv, n):
    """Seconds for `n` round trips: send a value, receive it back plus one."""
    v = 0
    t0 = time.perf_counter()
    for _ in range(n):
        send(v)
        v = recv()
    dt = time.perf_counter() - t0
    assert v == n
    return dt


def pingpong_pycoro():
    import pycoro
    n = ROUND_TRIPS

    def main():
        a, b = pycoro.Channel(), pycoro.Channel()

        def echo():
            for _ in range(n):
                b.send(a.recv() + 1)

        t = pycoro.spawn_on(1, echo)
        dt = _bounce(a.send, b.recv, n)
        t.join()
        return dt

    return pycoro.run(main, hubs=2) / n * 1e6


def pingpong_queue():
    n = ROUND_TRIPS
    import queue
    import threading
    a, b = queue.Queue(), queue.Queue()

    def echo():
        for _ in range(n):
            b.put(a.get() + 1)

    th = threading.Thread(target=echo)
    th.start()
    dt = _bounce(a.put, b.get, n)
    th.join()
    return dt / n * 1e6


def _with_other_loop(main):
    """asyncio.run(main(other)), `other` an event loop running in a second thread."""
    import asyncio
    import threading
    other = asyncio.new_event_loop()
    th = threading.Thread(target=other.run_forever, daemon=True)
    th.start()
    try:
        return asyncio.run(main(other))
    finally:
        other.call_soon_threadsafe(other.stop)
        th.join()


def pingpong_asyncio():
    n = ROUND_TRIPS
    import asyncio

    async def main(other):
        here = asyncio.get_running_loop()

        def echo(v, fut):  # on the other loop
            here.call_soon_threadsafe(fut.set_result, v + 1)

        v = 0
        t0 = time.perf_counter()
        for _ in range(n):
            fut = here.create_future()
            other.call_soon_threadsafe(echo, v, fut)
            v = await fut
        dt = time.perf_counter() - t0
        assert v == n
        return dt

    return _with_other_loop(main) / n * 1e6


# -- stream (thousands of items per second) ----------------------------------
def stream_pycoro():
    n = ITEMS
    import pycoro

    def main():
        ch = pycoro.Channel(256)

        def producer():
            send = ch.send
            for i in range(n):
                send(i)
            ch.close()

        t0 = time.perf_counter()
        pycoro.spawn_on(1, producer)
        count = 0
        for _ in ch:
            count += 1
        dt = time.perf_counter() - t0
        assert count == n
        return dt

    return n / pycoro.run(main, hubs=2) / 1e3


def stream_queue():
    n = ITEMS
    import queue
    import threading
    q = queue.Queue(256)
    done = object()

    def producer():
        put = q.put
        for i in range(n):
            put(i)
        put(done)

    t0 = time.perf_counter()
    th = threading.Thread(target=producer)
    th.start()
    count = 0
    get = q.get
    while get() is not done:
        count += 1
    dt = time.perf_counter() - t0
    th.join()
    assert count == n
    return n / dt / 1e3


def stream_asyncio():
    n = ITEMS
    import asyncio

    async def main(other):
        here = asyncio.get_running_loop()
        q = asyncio.Queue()
        done = object()

        def producer():  # on the other loop
            put = q.put_nowait
            cs = here.call_soon_threadsafe
            for i in range(n):
                cs(put, i)
            cs(put, done)

        t0 = time.perf_counter()
        other.call_soon_threadsafe(producer)
        count = 0
        while (await q.get()) is not done:
            count += 1
        dt = time.perf_counter() - t0
        assert count == n
        return dt

    return n / _with_other_loop(main) / 1e3


CONFIGS = {
    "fanout pycoro hubs=1": (lambda: fanout_pycoro(1), "s"),
    "fanout pycoro hubs=2": (lambda: fanout_pycoro(2), "s"),
    "fanout ThreadPoolExecutor(2)": (fanout_threads, "s"),
    "fanout multiprocessing.Pool(2)": (fanout_processes, "s"),
    "fanout serial loop": (fanout_serial, "s"),
    "pingpong pycoro 2 hubs": (pingpong_pycoro, "us/rt"),
    "pingpong queue.Queue 2 threads": (pingpong_queue, "us/rt"),
    "pingpong asyncio 2 loops": (pingpong_asyncio, "us/rt"),
    "stream pycoro Channel(256) 2 hubs": (stream_pycoro, "k items/s"),
    "stream queue.Queue(256) 2 threads": (stream_queue, "k items/s"),
    "stream asyncio call_soon_threadsafe": (stream_asyncio, "k items/s"),
}


def _one(name, quick):
    global WORK, ROUND_TRIPS, ITEMS
    if quick:
        WORK, ROUND_TRIPS, ITEMS = WORK // 10, ROUND_TRIPS // 10, ITEMS // 10
    fn, _unit = CONFIGS[name]
    return fn()


def measure(name, runs=5, quick=False):
    """Run configuration `name` `runs` times, each in a fresh process."""
    values = []
    for _ in range(runs):
        argv = [sys.executable, __file__, "--one", name] + (["--quick"] if quick else [])
        out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
        values.append(json.loads(out.strip().splitlines()[-1]))
    return values


def rows(runs=5, quick=False, names=None):
    """[(name, median, low, high, unit)] for every configuration (or `names`)."""
    result = []
    for name in names or CONFIGS:
        values = measure(name, runs, quick)
        result.append((name, statistics.median(values), min(values), max(values), CONFIGS[name][1]))
    return result


def _ratio(by, a, b, higher_is_better=False):
    if a not in by or b not in by:
        return None
    x, y = by[a][1], by[b][1]
    return (x / y) if higher_is_better else (y / x)


def main(argv):
    if argv[:1] == ["--one"]:
        print(json.dumps(_one(argv[1], "--quick" in argv)))
        return
    runs = 5
    quick = "--quick" in argv
    args = [a for a in argv if a != "--quick"]
    if args[:1] == ["--runs"]:
        runs = int(args[1])
        args = args[2:]
    import sysconfig
    ft = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    print(f"python {sys.version.split()[0]}{'t' if ft else ''} (GIL {'on' if gil else 'off'}), "
          f"{runs} fresh processes per row, median [min-max]")
    table = rows(runs, quick, args or None)
    by = {r[0]: r for r in table}
    for name, med, lo, hi, unit in table:
        print(f"  {name:40s} {med:10.3f} [{lo:.3f}-{hi:.3f}] {unit}")
    checks = [
        ("fan-out speed-up hubs=2 / hubs=1", _ratio(by, "fanout pycoro hubs=2", "fanout pycoro hubs=1")),
        ("fan-out hubs=2 vs ThreadPoolExecutor", _ratio(by, "fanout pycoro hubs=2", "fanout ThreadPoolExecutor(2)")),
        ("fan-out hubs=2 vs multiprocessing.Pool", _ratio(by, "fanout pycoro hubs=2", "fanout multiprocessing.Pool(2)")),
        ("ping-pong: pycoro faster than queue.Queue by", _ratio(by, "pingpong pycoro 2 hubs", "pingpong queue.Queue 2 threads")),
        ("ping-pong: pycoro faster than asyncio by", _ratio(by, "pingpong pycoro 2 hubs", "pingpong asyncio 2 loops")),
        ("stream: pycoro faster than queue.Queue by", _ratio(by, "stream pycoro Channel(256) 2 hubs", "stream queue.Queue(256) 2 threads", True)),
        ("stream: pycoro faster than asyncio by", _ratio(by, "stream pycoro Channel(256) 2 hubs", "stream asyncio call_soon_threadsafe", True)),
    ]
    for label, r in checks:
        if r is not None:
            print(f"  {label:40s} {r:6.2f}x (of medians)")


if __name__ == "__main__":
    main(sys.argv[1:])
