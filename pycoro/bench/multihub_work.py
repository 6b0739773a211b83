"""The multi-hub and free-threading workloads of `python -m pycoro bench`,
run in its worker processes (workers.py dispatches the `mh_*` commands
here): one configuration per process, one value per process.

  fan-out   100 tasks of pure-Python work (a loop of integer arithmetic),
            spawned and joined: pycoro on 1 and on 2 hubs, a 2-thread
            ThreadPoolExecutor, a 2-process multiprocessing.Pool (its start
            excluded), the plain serial loop.  Seconds.
  ping-pong one value bounced between two parties on two threads: pycoro
            tasks on hub 0 and hub 1 over two unbuffered Channels, two
            threads over two queue.Queue, two asyncio loops answering each
            other with call_soon_threadsafe.  ns per round trip.
  stream    items sent one way across threads: a Channel(256) across hubs,
            a queue.Queue(256) between threads, call_soon_threadsafe(
            asyncio.Queue.put_nowait) between loops.  ns per item.
  switch    fiber switch throughput of 2 threads, each ping-ponging its own
            fiber, against 1 thread (pycoro or greenlet; free-threaded
            builds): 2-thread wall time per switch / 1-thread time per switch.

Owns: these workloads.  May call: pycoro, greenlet (through
workloads.load_impl), the standard library.
"""
import sys
import sysconfig
import threading
import time

_clock = time.perf_counter


def free_threaded():
    """True on a free-threaded build running with the GIL off."""
    return bool(sysconfig.get_config_var("Py_GIL_DISABLED")) and \
        not getattr(sys, "_is_gil_enabled", lambda: True)()


def _work(n):
    s = 0
    for i in range(n):
        s += i * i % 7
    return s


# -- fan-out (seconds) ----------------------------------------------------------
def _fanout_pycoro(hubs, work, tasks):
    import pycoro

    def main():
        ts = [pycoro.spawn_on(i % hubs, _work, work) for i in range(tasks)]
        return sum(t.join() for t in ts)

    t0 = _clock()
    total = pycoro.run(main, hubs=hubs)
    return _clock() - t0, total


def _timed_map(map_fn, work, tasks):
    t0 = _clock()
    total = sum(map_fn(_work, [work] * tasks))
    return _clock() - t0, total


def _fanout_threads(work, tasks):
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(2) as ex:
        return _timed_map(ex.map, work, tasks)


def _fanout_processes(work, tasks):
    import multiprocessing
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pool.map(abs, range(2))     # both workers up: the pool's start is not timed
        return _timed_map(pool.map, work, tasks)


FANOUT = {
    "hubs1": lambda w, t: _fanout_pycoro(1, w, t),
    "hubs2": lambda w, t: _fanout_pycoro(2, w, t),
    "threads": _fanout_threads,
    "processes": _fanout_processes,
    "serial": lambda w, t: _timed_map(map, w, t),
}


def work_fanout(config, work, tasks):
    dt, total = FANOUT[config](work, tasks)
    if total != _work(work) * tasks:
        raise RuntimeError("fan-out %s: wrong total %r" % (config, total))
    return {"s": dt}


# -- ping-pong (ns per round trip) ---------------------------------------------
def _bounce(send, recv, n):
    v = 0
    t0 = _clock()
    for _ in range(n):
        send(v)
        v = recv()
    dt = _clock() - t0
    if v != n:
        raise RuntimeError("ping-pong ended at %r, not %d" % (v, n))
    return dt


def _pingpong_pycoro(n):
    import pycoro

    def main():
        a, b = pycoro.Channel(), pycoro.Channel()

        def echo():
            for _ in range(n):
                b.send(a.recv() + 1)

        t = pycoro.spawn_on(1, echo)
        dt = _bounce(a.send, b.recv, n)
        t.join()
        return dt

    return pycoro.run(main, hubs=2)


def _pingpong_queue(n):
    import queue
    a, b = queue.Queue(), queue.Queue()

    def echo():
        for _ in range(n):
            b.put(a.get() + 1)

    th = threading.Thread(target=echo)
    th.start()
    dt = _bounce(a.put, b.get, n)
    th.join()
    return dt


def _with_other_loop(main):
    """asyncio.run(main(other)), `other` an event loop running in a second thread."""
    import asyncio
    other = asyncio.new_event_loop()
    th = threading.Thread(target=other.run_forever, daemon=True)
    th.start()
    try:
        return asyncio.run(main(other))
    finally:
        other.call_soon_threadsafe(other.stop)
        th.join()
        other.close()


def _pingpong_asyncio(n):
    import asyncio

    async def main(other):
        here = asyncio.get_running_loop()

        def echo(v, fut):   # on the other loop
            here.call_soon_threadsafe(fut.set_result, v + 1)

        v = 0
        t0 = _clock()
        for _ in range(n):
            fut = here.create_future()
            other.call_soon_threadsafe(echo, v, fut)
            v = await fut
        dt = _clock() - t0
        if v != n:
            raise RuntimeError("asyncio ping-pong ended at %r" % v)
        return dt

    return _with_other_loop(main)


PINGPONG = {"pycoro": _pingpong_pycoro, "queue": _pingpong_queue, "asyncio": _pingpong_asyncio}


def work_pingpong(config, n):
    return {"ns": PINGPONG[config](n) / n * 1e9}


# -- stream (ns per item) -------------------------------------------------------
def _stream_pycoro(n):
    import pycoro

    def main():
        ch = pycoro.Channel(256)

        def producer():
            send = ch.send
            for i in range(n):
                send(i)
            ch.close()

        t0 = _clock()
        pycoro.spawn_on(1, producer)
        count = 0
        for _ in ch:
            count += 1
        dt = _clock() - t0
        if count != n:
            raise RuntimeError("stream: %d of %d items" % (count, n))
        return dt

    return pycoro.run(main, hubs=2)


def _stream_queue(n):
    import queue
    q = queue.Queue(256)
    done = object()

    def producer():
        put = q.put
        for i in range(n):
            put(i)
        put(done)

    t0 = _clock()
    th = threading.Thread(target=producer)
    th.start()
    count = 0
    get = q.get
    while get() is not done:
        count += 1
    dt = _clock() - t0
    th.join()
    if count != n:
        raise RuntimeError("queue stream: %d of %d items" % (count, n))
    return dt


def _stream_asyncio(n):
    import asyncio

    async def main(other):
        here = asyncio.get_running_loop()
        q = asyncio.Queue()
        done = object()

        def producer():     # on the other loop
            put = q.put_nowait
            cs = here.call_soon_threadsafe
            for i in range(n):
                cs(put, i)
            cs(put, done)

        t0 = _clock()
        other.call_soon_threadsafe(producer)
        count = 0
        while (await q.get()) is not done:
            count += 1
        dt = _clock() - t0
        if count != n:
            raise RuntimeError("asyncio stream: %d of %d items" % (count, n))
        return dt

    return _with_other_loop(main)


STREAM = {"pycoro": _stream_pycoro, "queue": _stream_queue, "asyncio": _stream_asyncio}


def work_stream(config, n):
    return {"ns": STREAM[config](n) / n * 1e9}


# -- switch throughput across threads (free-threaded builds) --------------------
def _switch_threads(impl, threads, n):
    """Wall seconds for `threads` threads each doing `n` round trips with
    their own ping-pong fiber, started together at a barrier."""
    from .workloads import fiber_at_depth
    barrier = threading.Barrier(threads + 1)
    errors = []

    def body():
        try:
            sw = fiber_at_depth(impl, 1, loop=True).switch
            for _ in range(100):
                sw()
        except BaseException as e:   # reported by the caller
            errors.append(e)
            barrier.abort()
            return
        barrier.wait()
        for _ in range(n):
            sw()
        barrier.wait()

    ths = [threading.Thread(target=body) for _ in range(threads)]
    for th in ths:
        th.start()
    barrier.wait()
    t0 = _clock()
    barrier.wait()
    dt = _clock() - t0
    for th in ths:
        th.join()
    if errors:
        raise errors[0]
    return dt


def work_switch_threads(impl_name, n, repeat):
    """Best of `repeat` for 1 thread and for 2 threads (interleaved); the
    scaling value: 2 threads' wall time per round trip (2n of them) over
    1 thread's (n), so 0.5 is perfect scaling."""
    from .workloads import load_impl
    impl = load_impl(impl_name)
    one, two = [], []
    for _ in range(repeat):
        one.append(_switch_threads(impl, 1, n))
        two.append(_switch_threads(impl, 2, n))
    best1, best2 = min(one), min(two)
    return {"impl": impl.name, "version": impl.version, "free_threaded": free_threaded(),
            "one_ns": best1 / n * 1e9, "two_ns": best2 / (2 * n) * 1e9,
            "value": best2 / (2 * best1)}


WORKERS = {"mh_fanout": work_fanout, "mh_pingpong": work_pingpong, "mh_stream": work_stream,
           "mh_switch_threads": work_switch_threads}
