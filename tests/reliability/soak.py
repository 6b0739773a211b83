"""Soak driver (issue 14): mixed load for a fixed time with RSS sampled.

Owns: the load mix and the RSS verdict.  Calls only pycoro's public API
(Fiber, settrace, the hub, Channel/Queue/Event/TaskGroup) and the standard
library.  Not collected by pytest (no test_ prefix); .ci/lanes/soak.sh runs it.

    python -m tests.reliability.soak [--seconds 120] [--warmup 20]

Each round mixes: fibers switched back and forth, thrown into, left
suspended and dropped (killed by GC), garbage cycles through suspended
fibers; a hub run with tasks, sleeps, a Channel, a Queue, an Event and a
TaskGroup; two threads switching their own fibers (one also runs a hub)
while a third runs gc.collect(); and every other round the switch tracer
(pycoro.settrace) on.  RSS is read from /proc/self/statm once a second.

Verdict: the median RSS of the last 5 samples must be within 10 % above
the median of the 5 samples right after warm-up (a decrease is no leak).
Exit status 0 = pass, 1 = RSS grew, 2 = the load itself failed.
"""
import argparse
import gc
import os
import statistics
import sys
import threading
import time

import pycoro
from pycoro import Channel, Event, Fiber, FiberExit, Queue, TaskGroup, current

PAGE = os.sysconf("SC_PAGE_SIZE")
OPS = [0]            # operations done, all threads (a lock-free estimate is enough)
CYCLES = [True]      # garbage cycles through suspended fibers in the mix


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


# ---- fibers ------------------------------------------------------------------
class Node:
    """A garbage cycle through a suspended fiber: node -> fiber -> frame -> node."""
    def __init__(self):
        self.fiber = None


def fiber_round(n=200):
    main = current()
    ops = 0

    def pingpong(x):
        while True:
            x = main.switch(x + 1)

    f = Fiber(pingpong)
    v = f.switch(0)
    for _ in range(n):
        v = f.switch(v)
    ops += n + 1
    assert v == n + 1, v
    f.throw(FiberExit)          # killed cleanly
    ops += 1

    # thrown into: the body sees the exception and returns a value
    def catcher():
        try:
            main.switch("ready")
        except ValueError as e:
            return "caught %s" % e
    c = Fiber(catcher)
    assert c.switch() == "ready"
    assert c.throw(ValueError, "x") == "caught x"
    ops += 2

    # suspended then dropped: killed by the collector, with a cycle
    # (--no-cycles leaves this out: it aborts today, see
    # tests/reliability/test_fuzz_regressions.py)
    for _ in range(n // 10 if CYCLES[0] else 0):
        node = Node()

        def hold(node=node):
            buf = [node]                # the frame refers to the node
            main.switch(len(buf))
        node.fiber = Fiber(hold)
        node.fiber.switch()
        ops += 1
    node = None

    # nested: a fiber starting fibers inside itself
    def nest(k):
        if k:
            return Fiber(nest).switch(k - 1) + 1
        return 0
    assert Fiber(nest).switch(20) == 20
    ops += 21
    OPS[0] += ops


# ---- hub ------------------------------------------------------------------------
def hub_round(tasks=50):
    def main():
        ch = Channel()
        q = Queue()
        ev = Event()
        total = [0]

        def producer(k):
            for i in range(k):
                ch.send(i)
            pycoro.sleep(0)

        def consumer(k):
            s = 0
            for _ in range(k):
                s += ch.recv()
            q.put(s)

        def waiter():
            ev.wait()
            total[0] += 1

        with TaskGroup() as g:
            for _ in range(tasks // 5):
                g.spawn(waiter)
            g.spawn(producer, tasks)
            g.spawn(consumer, tasks)
            for _ in range(tasks // 2):
                g.spawn(pycoro.sleep, 0)
            pycoro.sleep(0.001)
            ev.set()
        assert q.get() == tasks * (tasks - 1) // 2
        assert total[0] == tasks // 5
        return tasks
    OPS[0] += pycoro.run(main) * 3


# ---- tracer ---------------------------------------------------------------------
TRACED = [0]


def tracer(event, args):
    TRACED[0] += 1


# ---- threads --------------------------------------------------------------------
def thread_body(stop, hub_too, errors):
    try:
        while not stop.is_set():
            fiber_round(50)
            if hub_too:
                hub_round(10)
    except BaseException as e:          # reported by the main thread
        errors.append(e)


def gc_body(stop, errors):
    try:
        while not stop.is_set():
            gc.collect()
            OPS[0] += 1
            time.sleep(0.05)
    except BaseException as e:
        errors.append(e)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("PYCORO_SOAK_SECONDS", 120)))
    ap.add_argument("--warmup", type=float, default=None,
                    help="seconds before the baseline (default: 1/6 of the run, at most 300)")
    ap.add_argument("--tolerance", type=float, default=0.10)
    ap.add_argument("--no-cycles", action="store_true",
                    help="leave out garbage cycles through suspended fibers")
    ap.add_argument("--canary-leak", type=int, default=0, metavar="BYTES",
                    help="leak this much a round on purpose (checks that the verdict can fail)")
    a = ap.parse_args(argv)
    CYCLES[0] = not a.no_cycles
    leaked = []
    warmup = a.warmup if a.warmup is not None else min(300.0, a.seconds / 6)
    stop = threading.Event()
    errors = []
    threads = [threading.Thread(target=thread_body, args=(stop, False, errors), daemon=True),
               threading.Thread(target=thread_body, args=(stop, True, errors), daemon=True),
               threading.Thread(target=gc_body, args=(stop, errors), daemon=True)]
    for t in threads:
        t.start()
    samples = []          # (seconds since start, rss)
    t0 = time.monotonic()
    next_sample = t0
    rounds = 0
    try:
        while True:
            now = time.monotonic()
            if now >= next_sample:
                samples.append((now - t0, rss_bytes()))
                next_sample += 1.0
            if now - t0 >= a.seconds or errors:
                break
            traced = rounds % 2 == 1
            if traced:
                pycoro.settrace(tracer)
            try:
                fiber_round()
                hub_round()
            finally:
                if traced:
                    pycoro.settrace(None)
            if a.canary_leak:
                leaked.append(bytearray(a.canary_leak))
            if rounds % 10 == 0:
                gc.collect()
            rounds += 1
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    if errors:
        print("soak: the load failed in a thread:", repr(errors[0]), file=sys.stderr)
        raise errors[0]
    if any(t.is_alive() for t in threads):
        print("soak: a worker thread did not stop", file=sys.stderr)
        return 2
    gc.collect()
    samples.append((time.monotonic() - t0, rss_bytes()))
    after = [r for s, r in samples if s >= warmup]
    if len(after) < 10:
        print("soak: too few samples after warm-up (%d); run longer" % len(after), file=sys.stderr)
        return 2
    base = statistics.median(after[:5])
    end = statistics.median(after[-5:])
    mib = 1 << 20
    print("soak: %.0f s, warm-up %.0f s, %d rounds, %d ops, %d tracer calls, %d RSS samples%s"
          % (samples[-1][0], warmup, rounds, OPS[0], TRACED[0], len(samples),
             "" if CYCLES[0] else " (no garbage cycles through fibers)"))
    print("soak: RSS MiB: start %.1f, after warm-up %.1f, end %.1f, min %.1f, max %.1f (after warm-up: max %.1f)"
          % (samples[0][1] / mib, base / mib, end / mib, min(r for _, r in samples) / mib,
             max(r for _, r in samples) / mib, max(after) / mib))
    step = max(1, len(samples) // 12)
    print("soak: samples (s: MiB):", ", ".join("%.0f: %.1f" % (s, r / mib) for s, r in samples[::step]))
    growth = end / base - 1
    print("soak: growth after warm-up %+.1f %% (limit +%.0f %%)" % (growth * 100, a.tolerance * 100))
    if growth > a.tolerance:
        print("soak: FAIL: RSS grew by more than the limit", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
