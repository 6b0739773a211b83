"""Several hubs, one OS thread each (pycoro.run(..., hubs=N), issue 17):
placement, tasks / channels / sync objects / TaskGroup / timeouts across
hubs, deadlock detection over every hub, Ctrl-C, and a stress test whose
counts must come out exact.  Runs on GIL builds and on free-threaded 3.13t."""
import os
import queue as _queue
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

import pycoro
from pycoro import Cancelled, Channel, ChannelClosed, Deadlock, Timeout
from pycoro._hub import _parking

from .conftest import scaled


def here():
    return pycoro.get_hub().index


def until_waiting(*tasks):
    """Yield until every task (of any hub) is parked: an observation, not a guess."""
    while not all(t.state == "waiting" for t in tasks):
        pycoro.sleep(0.0005)


def sleep_until_cancelled(log):
    try:
        pycoro.sleep(60)
    except Cancelled:
        log.append(here())
        raise


# -- placement -----------------------------------------------------------------
def test_main_on_hub0_tasks_stay_on_their_hub():
    def job():
        ident = threading.get_ident()
        seen = set()
        for _ in range(5):
            seen.add((here(), threading.get_ident() == ident))
            pycoro.sleep(0)
        return seen

    def main():
        hubs = pycoro.hubs()
        assert [h.index for h in hubs] == [0, 1, 2]
        assert pycoro.get_hub() is hubs[0]
        ts = [pycoro.spawn_on(i, job) for i in range(3)]
        ts.append(pycoro.spawn_on(hubs[2], job))
        ts.append(pycoro.spawn(job))  # spawn: the current hub
        return [t.join() for t in ts], threading.get_ident()

    results, main_ident = pycoro.run(main, hubs=3)
    assert main_ident == threading.get_ident()
    assert results == [{(0, True)}, {(1, True)}, {(2, True)}, {(2, True)}, {(0, True)}]


def test_hub_threads_are_distinct_and_joined():
    before = threading.active_count()

    def main():
        return {pycoro.spawn_on(i, threading.get_ident).join() for i in range(4)}

    idents = pycoro.run(main, hubs=4)
    assert len(idents) == 4
    assert threading.active_count() == before


def test_spawn_on_any_balances_load():
    def main():
        ev = pycoro.Event()
        ts = [pycoro.spawn_on("any", lambda: (ev.wait(), here())[1]) for _ in range(40)]
        pycoro.sleep(0)
        ev.set()
        placed = [t.join() for t in ts]
        return [placed.count(i) for i in range(2)]

    counts = pycoro.run(main, hubs=2)
    assert sum(counts) == 40
    assert abs(counts[0] - counts[1]) <= 2


def test_single_hub_default_and_argument_checks():
    def main():
        return pycoro.hubs(), pycoro.get_hub()

    hubs, hub = pycoro.run(main)
    assert hubs == [hub] and hub.index == 0
    assert pycoro.run(lambda: pycoro.spawn_on(0, lambda: 7).join()) == 7
    assert pycoro.run(lambda: pycoro.spawn_on("any", lambda: 8).join()) == 8
    for bad in (0, -1):
        with pytest.raises(ValueError):
            pycoro.run(main, hubs=bad)
    for bad in ("two", 1.5, True):
        with pytest.raises(TypeError):
            pycoro.run(main, hubs=bad)

    def bad_where():
        with pytest.raises(IndexError):
            pycoro.spawn_on(2, int)
        with pytest.raises(TypeError):
            pycoro.spawn_on("elsewhere", int)
        return True

    assert pycoro.run(bad_where, hubs=2)
    with pytest.raises(RuntimeError, match="spawn_on"):
        pycoro.spawn_on(0, int)


def test_auto_is_one_hub_per_available_core():
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if hasattr(os, "process_cpu_count"):
        expected = os.process_cpu_count()
    assert pycoro.run(lambda: len(pycoro.hubs()), hubs="auto") == expected


def test_methods_are_plain_again_after_a_multi_hub_run():
    plain = pycoro.Lock.acquire
    seen = []

    def main():
        seen.append(pycoro.Lock.acquire is plain)

    pycoro.run(main, hubs=2)
    assert seen == [False] and pycoro.Lock.acquire is plain and not _parking.multi()
    assert pycoro.run(lambda: 5) == 5


# -- tasks across hubs ----------------------------------------------------------
def test_join_result_exception_cancel_across_hubs():
    def fails():
        pycoro.sleep(0)
        raise ValueError("boom")

    def main():
        assert pycoro.spawn_on(1, lambda: here() * 10).join() == 10
        t = pycoro.spawn_on(1, fails)
        with pytest.raises(ValueError, match="boom"):
            t.join()
        assert isinstance(t.exception(), ValueError)
        log = []
        s = pycoro.spawn_on(1, sleep_until_cancelled, log)
        with pytest.raises(Timeout):
            s.join(timeout=0.01)
        assert s.cancel("stop")
        with pytest.raises(Cancelled):
            s.join()
        assert s.cancelled() and log == [1]
        assert not s.cancel()
        # a task of hub 1 joins one of hub 0, and cancels one of hub 0
        ev = pycoro.Event()
        local = pycoro.spawn(lambda: ev.wait() and "local")
        victim = pycoro.spawn(pycoro.sleep, 60)

        def remote():
            victim.cancel()
            ev.set()
            return local.join()

        assert pycoro.spawn_on(1, remote).join() == "local"
        # a task of hub 1 places one on hub 0 and on hub 2, and joins them
        assert pycoro.spawn_on(1, lambda: [pycoro.spawn_on(i, here).join() for i in (0, 2)]).join() == [0, 2]
        with pytest.raises(Cancelled):
            victim.join()
        done = []
        called = pycoro.Event()
        d = pycoro.spawn_on(1, int)
        d.join()
        d.add_done_callback(lambda task: (done.append((task, here())), called.set()))
        assert called.wait(10)
        return done == [(d, 1)]

    assert pycoro.run(main, hubs=3)


def test_wait_across_hubs():
    def main():
        ch = Channel()
        ts = [pycoro.spawn_on(i % 2, ch.recv) for i in range(4)]
        done, pending = pycoro.wait(ts, timeout=0.01)
        assert not done and len(pending) == 4
        ch.send("a")
        done, pending = pycoro.wait(ts, return_when=pycoro.FIRST_COMPLETED)
        assert len(done) == 1 and done.pop().result() == "a"
        for v in "bcd":
            ch.send(v)
        done, pending = pycoro.wait(ts)
        return sorted(t.result() for t in done)

    assert pycoro.run(main, hubs=2) == ["a", "b", "c", "d"]


# -- channels -------------------------------------------------------------------
@pytest.mark.parametrize("capacity", [0, 1, 16])
def test_channel_across_hubs_keeps_order(capacity):
    n = scaled(2000, 50)

    def producer(ch):
        for i in range(n):
            ch.send(i)
        ch.close()

    def main():
        ch = Channel(capacity)
        pycoro.spawn_on(1, producer, ch)
        return list(ch)

    assert pycoro.run(main, hubs=2) == list(range(n))


def test_close_wakes_receivers_on_other_hubs():
    def main():
        ch = Channel()

        def receiver():
            with pytest.raises(ChannelClosed):
                ch.recv()
            return here()

        ts = [pycoro.spawn_on(i % 3, receiver) for i in range(6)]
        until_waiting(*ts)
        pycoro.spawn_on(2, ch.close).join()
        return sorted(t.join() for t in ts)

    assert pycoro.run(main, hubs=3) == [0, 0, 1, 1, 2, 2]


def test_select_across_hubs_exactly_once():
    n = scaled(500, 20)

    def main():
        a, b, out = Channel(), Channel(), Channel()

        def feeder(ch, tag):
            for i in range(n):
                ch.send((tag, i))

        pycoro.spawn_on(1, feeder, a, "a")
        pycoro.spawn_on(2, feeder, b, "b")
        got = {"a": [], "b": []}
        for _ in range(2 * n):
            ch, (tag, i) = pycoro.select(recv=[a, b])
            got[tag].append(i)
        # a parked send case, woken from another hub
        me = pycoro.current_task()
        r = pycoro.spawn_on(1, lambda: (until_waiting(me), out.recv())[1])
        ch, _ = pycoro.select(send=[(out, "x")], recv=[Channel()])
        assert ch is out and r.join() == "x"
        with pytest.raises(Timeout):
            pycoro.select(recv=[Channel()], timeout=0.005)
        return got

    got = pycoro.run(main, hubs=3)
    assert got == {"a": list(range(n)), "b": list(range(n))}


# -- sync objects ---------------------------------------------------------------
def test_lock_mutual_exclusion_across_hubs():
    n = scaled(300, 20)

    def main():
        lock = pycoro.Lock()
        rlock = pycoro.RLock()
        count = [0, 0]

        def worker():
            for _ in range(n):
                with lock:
                    v = count[0]
                    pycoro.sleep(0)  # another task of any hub would see v
                    count[0] = v + 1
                with rlock:
                    with rlock:
                        v = count[1]
                        pycoro.sleep(0)
                        count[1] = v + 1

        ts = [pycoro.spawn_on(i % 2, worker) for i in range(4)]
        for t in ts:
            t.join()
        return count

    assert pycoro.run(main, hubs=2) == [4 * n, 4 * n]


def test_event_semaphore_condition_across_hubs():
    def main():
        ev = pycoro.Event()
        waiters = [pycoro.spawn_on(i % 2, ev.wait, 5) for i in range(6)]
        pycoro.spawn_on(1, ev.set)
        assert [w.join() for w in waiters] == [True] * 6

        sem = pycoro.BoundedSemaphore(2)
        inside = [0, 0]  # now, max

        def bounded():
            with sem:
                inside[0] += 1
                inside[1] = max(inside[1], inside[0])
                pycoro.sleep(0.001)
                inside[0] -= 1

        for t in [pycoro.spawn_on(i % 2, bounded) for i in range(8)]:
            t.join()
        assert inside == [0, 2]
        with pytest.raises(ValueError):
            pycoro.spawn_on(1, sem.release).join()

        cond = pycoro.Condition()
        items = []

        def consumer():
            with cond:
                cond.wait_for(lambda: items)
                return items.pop(0)

        cs = [pycoro.spawn_on(1, consumer) for _ in range(3)]
        until_waiting(*cs)
        for i in range(3):
            with cond:
                items.append(i)
                cond.notify()
        return sorted(c.join() for c in cs)

    assert pycoro.run(main, hubs=2) == [0, 1, 2]


def test_queue_with_timeouts_loses_nothing_across_hubs():
    """A getter with a tiny timeout races the putter on the other hub: every
    item arrives exactly once and in order, whichever side wins each time."""
    n = scaled(1500, 50)

    def main():
        q = pycoro.Queue(maxsize=3)

        def producer():
            for i in range(n):
                q.put(i)
            q.join()
            return "drained"

        p = pycoro.spawn_on(1, producer)
        got = []
        timeouts = 0
        while len(got) < n:
            try:
                got.append(q.get(timeout=0.00001))
                q.task_done()
            except _queue.Empty:
                timeouts += 1
        return got, p.join()

    got, status = pycoro.run(main, hubs=2)
    assert got == list(range(n)) and status == "drained"


def test_timeout_and_move_on_after_across_hubs():
    def main():
        ch = Channel()
        with pytest.raises(Timeout):
            with pycoro.timeout(0.01):
                ch.recv()
        with pycoro.move_on_after(0.01) as scope:
            pycoro.spawn_on(1, pycoro.sleep, 5).join()
        assert scope.cancelled_caught
        # deadlines racing grants from hub 1: each value is received once
        n = scaled(300, 20)
        sent = pycoro.spawn_on(1, lambda: [ch.send(i) for i in range(n)])
        got = []
        while len(got) < n:
            with pycoro.move_on_after(0.00002):
                got.append(ch.recv())
        sent.join()
        return got == list(range(n))

    assert pycoro.run(main, hubs=2)


# -- TaskGroup ------------------------------------------------------------------
def test_taskgroup_across_hubs():
    def main():
        with pycoro.TaskGroup() as tg:
            ts = [tg.spawn_on(i % 3, here) for i in range(6)]
        assert [t.result() for t in ts] == [0, 1, 2, 0, 1, 2]

        cancelled = []

        def fails():
            pycoro.sleep(0.001)
            raise KeyError("child")

        with pytest.raises(ExceptionGroup) as info:
            with pycoro.TaskGroup() as tg:
                tg.spawn_on(0, sleep_until_cancelled, cancelled)
                tg.spawn_on(2, sleep_until_cancelled, cancelled)
                tg.spawn_on(1, fails)
                pycoro.sleep(60)  # the body is cancelled too
        assert [type(e) for e in info.value.exceptions] == [KeyError]
        return sorted(cancelled)

    assert pycoro.run(main, hubs=3) == [0, 2]


# -- deadlock and shutdown ------------------------------------------------------
def test_deadlock_only_when_every_hub_is_idle():
    def main():
        a, b = Channel(), Channel()
        pycoro.spawn_on(1, a.recv)
        # hub 1 is busy with a timer that will feed b: not a deadlock
        pycoro.spawn_on(1, lambda: (pycoro.sleep(0.02), b.send("late")))
        assert b.recv() == "late"
        b.recv()  # now nobody anywhere can send

    with pytest.raises(Deadlock) as info:
        pycoro.run(main, hubs=2)
    assert len(info.value.tasks) == 2  # main and the a.recv task on hub 1


def blocked_forever(log):
    """A task body that parks for good; records its hub when unwound."""
    try:
        Channel().recv()
    finally:
        log.append(here())


def test_systemexit_in_another_hub_ends_the_run():
    before = threading.active_count()
    cleaned = []

    def main():
        until_waiting(pycoro.spawn_on(2, blocked_forever, cleaned))
        pycoro.spawn_on(1, sys.exit, 3)
        pycoro.sleep(30)

    with pytest.raises(SystemExit) as info:
        pycoro.run(main, hubs=3)
    assert info.value.code == 3 and cleaned == [2]
    assert threading.active_count() == before


def test_tasks_left_on_other_hubs_are_cancelled_when_main_ends():
    log = []

    def main():
        until_waiting(*[pycoro.spawn_on(i, blocked_forever, log) for i in range(3)])
        return "done"

    assert pycoro.run(main, hubs=3) == "done"
    assert sorted(log) == [0, 1, 2]


CTRL_C_CHILD = textwrap.dedent("""
    import sys, threading, pycoro
    cleaned = []
    def forever(tag):
        try:
            pycoro.sleep(60)
        finally:
            cleaned.append(tag)
    def main():
        ts = [pycoro.spawn_on(i, forever, i) for i in range(3)]
        while not all(t.state == "waiting" for t in ts):
            pycoro.sleep(0.0005)
        print("ready", flush=True)
        pycoro.sleep(60)
    try:
        pycoro.run(main, hubs=3)
    except KeyboardInterrupt:
        print("KeyboardInterrupt", sorted(cleaned), threading.active_count(), flush=True)
""")


def test_ctrl_c_interrupts_main_cancels_every_hub_and_joins_threads():
    proc = subprocess.Popen([sys.executable, "-c", CTRL_C_CHILD], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert out == "KeyboardInterrupt [0, 1, 2] 1\n"


# -- stress ---------------------------------------------------------------------
def test_stress_ping_pong_across_hubs_counts_exact():
    pairs = scaled(40, 4)
    rounds = scaled(100, 10)

    def main():
        lock = pycoro.Lock()
        total = [0]

        def ping(out, back):
            v = 0
            for _ in range(rounds):
                out.send(v)
                v = back.recv()
            with lock:
                total[0] += v
            return v

        def pong(inp, back):
            for _ in range(rounds):
                back.send(inp.recv() + 1)

        ts = []
        for i in range(pairs):
            a, b = Channel(i % 3), Channel()
            ts.append(pycoro.spawn_on(i % 3, ping, a, b))
            pycoro.spawn_on((i + 1) % 3, pong, a, b)
        results = [t.join() for t in ts]
        return results, total[0]

    results, total = pycoro.run(main, hubs=3)
    assert results == [rounds] * pairs and total == rounds * pairs
