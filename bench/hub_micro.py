"""Hub micro-benchmarks for before/after comparisons of hub refactors.

    python bench/hub_micro.py [workload ...]

Prints one line per workload: name and ns per operation (best of 3 rounds in
this process).  Run it in several fresh processes and take medians: the
machine is shared, single runs are noisy.
"""
import sys
import time

import pycoro


def spawn_join(n=50_000):
    def job(i):
        return i

    def main():
        spawn = pycoro.spawn
        tasks = [spawn(job, i) for i in range(n)]
        total = 0
        for t in tasks:
            total += t.join()
        return total

    assert pycoro.run(main) == n * (n - 1) // 2
    return n


def ping_pong(n=50_000):
    """Two tasks hand a value back and forth over unbuffered channels."""
    def main():
        a, b = pycoro.Channel(), pycoro.Channel()

        def echo():
            for _ in range(n):
                b.send(a.recv() + 1)

        t = pycoro.spawn(echo)
        v = 0
        for _ in range(n):
            a.send(v)
            v = b.recv()
        t.join()
        return v

    assert pycoro.run(main) == n
    return n


def event_ping_pong(n=50_000):
    """Lock hand-off between two tasks (park/reschedule through sync)."""
    def main():
        lock = pycoro.Lock()
        count = [0]

        def worker():
            for _ in range(n):
                with lock:
                    count[0] += 1
                    pycoro.sleep(0)

        ts = [pycoro.spawn(worker) for _ in range(2)]
        for t in ts:
            t.join()
        return count[0]

    assert pycoro.run(main) == 2 * n
    return 2 * n


def round_robin(tasks=2_000, yields=50):
    def main():
        sleep = pycoro.sleep

        def worker():
            for _ in range(yields):
                sleep(0)

        ts = [pycoro.spawn(worker) for _ in range(tasks)]
        for t in ts:
            t.join()

    pycoro.run(main)
    return tasks * yields


def timers(n=20_000):
    def main():
        def worker():
            pycoro.sleep(0.0001)

        ts = [pycoro.spawn(worker) for _ in range(n)]
        for t in ts:
            t.join()

    pycoro.run(main)
    return n


WORKLOADS = {f.__name__: f for f in (spawn_join, ping_pong, event_ping_pong, round_robin, timers)}


def main(argv):
    names = argv or list(WORKLOADS)
    for name in names:
        fn = WORKLOADS[name]
        best = None
        for _ in range(3):
            t0 = time.perf_counter_ns()
            ops = fn()
            dt = (time.perf_counter_ns() - t0) / ops
            best = dt if best is None else min(best, dt)
        print(f"{name} {best:.1f}")


if __name__ == "__main__":
    main(sys.argv[1:])
