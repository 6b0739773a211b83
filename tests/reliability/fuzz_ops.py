"""Long seeded fuzz: random operations on fiber graphs, each checked
against the model of model.py (who runs next, what arrives where, which
`finally` blocks run, which fibers are alive).

Owns: drawing operations from a seed and the tracer/threads around them.
Calls: tests.reliability.model.World (the operations and their checks),
pycoro.settrace.  .ci/lanes/fuzz.sh runs it long (normally and under ASan);
tests/reliability/test_fuzz.py runs it short.

    python -m tests.reliability.fuzz_ops --ops 1000000 [--seed S] [--threads 3]

The operations: switch (with a value), throw (an exception, or FiberExit:
a kill), return, raise, hold a reference in a frame, change a parent, drop
the last reference (a kill by refcount), new fiber, gc.collect (a kill of
garbage cycles), the switch tracer on/off (a tracer that now and then
starts and switches a fiber of its own: traced too, by greenlet's
re-entry rule, csrc/binding/switch.c), and, in every fourth episode, three threads running
their own graphs at once (also trying to switch to another thread's fiber).

Deterministic in what it draws: episode k of seed S draws from
random.Random(f"{S}:{k}:{thread}"), so a failure names its seed and episode
and `--seed S --first-episode k --ops 1` replays that episode first.  (The
interleaving of threads is the OS's; single-thread episodes replay exactly.)
The gc runs only where the model says (gc.disable()), as in test_stress.py.
"""
import argparse
import gc
import random
import sys
import threading
import time

import pycoro
from pycoro import Fiber, current
from tests.reliability.model import World

EPISODE_MAX = 60       # operations in one graph, at most
THREAD_EVERY = 4       # every 4th episode runs in threads


class Tracer:
    """Counts the switches it sees; every 7th call it runs a fiber itself."""

    def __init__(self):
        self.calls = 0

    def __call__(self, event, args):
        assert event in ("switch", "throw"), event
        origin, target = args
        assert isinstance(target, Fiber), target
        self.calls += 1
        if self.calls % 7 == 0:
            # its switches are traced too (re-entrantly): self.calls moves on
            n = self.calls
            assert Fiber(lambda x: x + 1).switch(n) == n + 1


def draw_op(rng):
    k = rng.random()
    i = rng.randrange(10)
    p = rng.randint(-3, 3)
    if k < 0.30:
        return ("switch", i, p)
    if k < 0.45:
        return ("throw", i, p, rng.random() < 0.5)       # True: FiberExit (a kill)
    if k < 0.52:
        return ("return", p)
    if k < 0.58:
        return ("raise", p)
    if k < 0.66:
        return ("hold", i)
    if k < 0.72:
        return ("parent", i, rng.randrange(10))
    if k < 0.80:
        return ("drop", i)
    if k < 0.88:
        return ("new", i)
    if k < 0.93:
        return ("collect",)
    if k < 0.97:
        return ("trace",)
    return ("foreign",)


WITHOUT = set()        # --without: operation kinds left out


def run_episode(rng, foreign, barrier=None):
    """One graph: 3 fibers, up to EPISODE_MAX operations, then finish (every
    fiber ended, nothing left alive).  Returns (operations, tracer calls).

    With `barrier` (threads running their graphs at once) the graph does
    not collect until every thread has done its operations: any thread's
    collection collects every thread's garbage cycles (each fiber unwound
    later, in its own thread), which a per-thread model cannot predict."""
    w = World()
    for _ in range(3):
        w.new_fiber()
    tracer = Tracer() if rng.random() < 0.3 else None
    pycoro.settrace(tracer)
    n = 0
    try:
        for _ in range(rng.randint(1, EPISODE_MAX)):
            op = draw_op(rng)
            n += 1
            if op[0] in WITHOUT or (barrier is not None and op[0] == "collect"):
                continue
            if op[0] == "trace":
                tracer = None if tracer else Tracer()
                pycoro.settrace(tracer)
            elif op[0] == "foreign":
                if foreign:
                    w.apply(("foreign", foreign[0]))
            else:
                w.apply(op)
        if barrier is not None:
            barrier.wait()
        w.finish()
    except BaseException:
        if barrier is not None:
            barrier.abort()             # the other threads stop waiting
        raise
    finally:
        pycoro.settrace(None)
    return n, tracer.calls if tracer else 0


def add(counts, n_traced, lock=threading.Lock()):
    with lock:
        counts["ops"] += n_traced[0]
        counts["traced"] += n_traced[1]


def threaded_episode(seed, k, counts):
    errors = []
    mine = Fiber(lambda: None)         # a fiber of this thread, for "foreign"

    barrier = threading.Barrier(counts["threads"])

    def body(t):
        try:
            add(counts, run_episode(random.Random(f"{seed}:{k}:{t}"), [mine], barrier))
        except threading.BrokenBarrierError:
            pass                        # another thread failed: its error is reported
        except BaseException as e:
            errors.append((t, e))
    ts = [threading.Thread(target=body, args=(t,)) for t in range(counts["threads"])]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        t, e = errors[0]
        raise AssertionError(f"episode {k}, thread {t}: {e!r}") from e


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--ops", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=3)
    ap.add_argument("--first-episode", type=int, default=0)
    ap.add_argument("--verbose", action="store_true", help="name each episode before it runs "
                    "(a crash then names its episode)")
    ap.add_argument("--without", default="", metavar="KIND,...",
                    help="leave these operation kinds out (to get past a known open bug)")
    a = ap.parse_args(argv)
    WITHOUT.update(k for k in a.without.split(",") if k)
    print(f"fuzz_ops: seed {a.seed}, {a.ops} operations wanted "
          f"(--seed {a.seed} reproduces)" + (f", without {sorted(WITHOUT)}" if WITHOUT else ""),
          flush=True)
    counts = {"ops": 0, "traced": 0, "threads": a.threads}
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)        # the GIL changes hands inside switches
    gc.disable()
    t0 = time.monotonic()
    k = a.first_episode
    episodes = threaded = 0
    next_report = 100_000
    try:
        while counts["ops"] < a.ops:
            if a.verbose:
                print(f"episode {k} (after {counts['ops']} operations, "
                      f"{time.monotonic() - t0:.2f} s)", flush=True)
            gc.freeze()                # gc.collect() walks this episode's objects only
            try:
                if a.threads and k % THREAD_EVERY == THREAD_EVERY - 1:
                    threaded_episode(a.seed, k, counts)
                    threaded += 1
                else:
                    try:
                        add(counts, run_episode(random.Random(f"{a.seed}:{k}:0"), []))
                    except BaseException as e:
                        raise AssertionError(f"seed {a.seed}, episode {k}: {e!r}") from e
            finally:
                gc.unfreeze()
            k += 1
            episodes += 1
            if counts["ops"] >= next_report:
                print(f"fuzz_ops: {counts['ops']} operations, {episodes} episodes, "
                      f"{time.monotonic() - t0:.0f} s", flush=True)
                next_report += 100_000
    finally:
        gc.enable()
        sys.setswitchinterval(old_interval)
    assert current().parent is None
    print(f"fuzz_ops: seed {a.seed}: {counts['ops']} operations in {episodes} episodes "
          f"({threaded} threaded), {counts['traced']} tracer calls, "
          f"{time.monotonic() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
