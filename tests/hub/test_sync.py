"""Event, Lock, RLock, Semaphore, BoundedSemaphore, Condition, Queue."""
import queue
import random

import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

import pycoro
from pycoro import Cancelled

from .conftest import scaled


def test_event():
    def main():
        ev = pycoro.Event()
        woken = []
        ts = [pycoro.spawn(lambda i=i: woken.append((i, ev.wait()))) for i in range(3)]
        pycoro.sleep(0)
        assert not ev.is_set() and woken == []
        ev.set()
        for t in ts:
            t.join()
        assert woken == [(0, True), (1, True), (2, True)]
        assert ev.wait() is True
        ev.clear()
        assert ev.wait(0) is False

    pycoro.run(main)


def test_lock_is_fifo_and_mutual_exclusion():
    lock = pycoro.Lock()
    order, inside = [], []

    def worker(i):
        with lock:
            inside.append(i)
            assert len(inside) == 1
            pycoro.sleep(0)
            order.append(i)
            inside.remove(i)

    def main():
        for t in [pycoro.spawn(worker, i) for i in range(5)]:
            t.join()

    pycoro.run(main)
    assert order == list(range(5))


def test_lock_release_unheld_is_runtime_error():
    with pytest.raises(RuntimeError):
        pycoro.Lock().release()
    with pytest.raises(RuntimeError):
        pycoro.RLock().release()
    with pytest.raises(ValueError):
        pycoro.Lock().acquire(False, timeout=1)


def test_rlock_reentrant_and_owned():
    def main():
        rl = pycoro.RLock()
        with rl:
            with rl:
                other = pycoro.spawn(rl.acquire, timeout=0.005)
                assert other.join() is False

                def release_foreign():
                    with pytest.raises(RuntimeError):
                        rl.release()

                pycoro.spawn(release_foreign).join()
        got = pycoro.spawn(lambda: rl.acquire() and (rl.release() or True))
        assert got.join() is True

    pycoro.run(main)


def test_semaphores():
    def main():
        sem = pycoro.Semaphore(2)
        active, peak = [0], [0]

        def worker():
            with sem:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
                pycoro.sleep(0)
                active[0] -= 1

        for t in [pycoro.spawn(worker) for _ in range(6)]:
            t.join()
        assert peak[0] == 2
        b = pycoro.BoundedSemaphore(1)
        b.acquire()
        b.release()
        with pytest.raises(ValueError):
            b.release()
        with pytest.raises(ValueError):
            pycoro.Semaphore(-1)

    pycoro.run(main)


def test_condition_notify_and_wait_for():
    def main():
        cond = pycoro.Condition()
        items = []

        def consumer():
            with cond:
                cond.wait_for(lambda: items)
                return items.pop()

        c = pycoro.spawn(consumer)
        pycoro.sleep(0)
        with cond:
            items.append("x")
            cond.notify()
        assert c.join() == "x"
        with pytest.raises(RuntimeError):
            cond.wait()
        with pytest.raises(RuntimeError):
            cond.notify()
        with cond:
            assert cond.wait_for(lambda: False, timeout=0.005) is False

    pycoro.run(main)


def test_condition_reacquires_lock_when_cancelled():
    def main():
        cond = pycoro.Condition(pycoro.Lock())
        state = []

        def waiter():
            with cond:
                try:
                    cond.wait()
                finally:
                    state.append(cond._lock.locked())

        t = pycoro.spawn(waiter)
        pycoro.sleep(0)
        with cond:
            t.cancel()
            pycoro.sleep(0)  # the waiter must wait for the lock we hold
            assert state == []
        with pytest.raises(Cancelled):
            t.join()
        assert state == [True] and not cond._lock.locked()

    pycoro.run(main)


def test_queue_interface():
    def main():
        q = pycoro.Queue(2)
        assert q.empty() and not q.full()
        q.put_nowait(1)
        q.put(2)
        assert q.full() and q.qsize() == 2
        with pytest.raises(queue.Full):
            q.put_nowait(3)
        blocked = pycoro.spawn(q.put, 3)
        pycoro.sleep(0)
        assert not blocked.done()
        assert q.get() == 1  # room: the blocked put completes (FIFO)
        blocked.join()
        assert [q.get_nowait(), q.get_nowait()] == [2, 3]
        with pytest.raises(queue.Empty):
            q.get_nowait()
        for _ in range(3):
            q.task_done()
        with pytest.raises(ValueError):
            q.task_done()
        q.put("job")
        joiner = pycoro.spawn(q.join)
        pycoro.sleep(0)
        assert not joiner.done()
        q.get()
        q.task_done()
        joiner.join()

    pycoro.run(main)


# ------------------------------------------------ no lost / duplicated items
# Producers and consumers move numbered items through a primitive while a
# chaos task cancels random participants at random points.  Every item a
# producer's call *returned* for must be consumed exactly once, and no item
# may be seen by a consumer unless it was put.

def _chaos_run(seed, kind, n_items, n_prod, n_cons, capacity):
    rng = random.Random(seed)
    put_ok, got = [], []

    def main():
        if kind == "queue":
            chan = pycoro.Queue(capacity)
            send, recv = chan.put, chan.get
        else:
            chan = pycoro.Channel(capacity)
            send, recv = chan.send, chan.recv
        items = iter(range(n_items))
        producers, consumers = [], []

        def producer():
            for i in items:
                try:
                    send(i)
                except Cancelled:
                    return  # item i was not sent
                put_ok.append(i)
                if rng.random() < 0.3:
                    pycoro.sleep(0)

        def consumer():
            while True:
                try:
                    v = recv()
                except Cancelled:
                    return
                got.append(v)
                if rng.random() < 0.3:
                    pycoro.sleep(0)

        for _ in range(n_prod):
            producers.append(pycoro.spawn(producer))
        for _ in range(n_cons):
            consumers.append(pycoro.spawn(consumer))
        # chaos: cancel random tasks, replacing them
        for _ in range(n_items // 4 + 1):
            for _ in range(rng.randrange(3)):
                pycoro.sleep(0)
            if rng.random() < 0.5:
                victim = rng.choice(producers)
                victim.cancel()
                producers.append(pycoro.spawn(producer))
            else:
                victim = rng.choice(consumers)
                victim.cancel()
                consumers.append(pycoro.spawn(consumer))
        for p in producers:
            try:
                p.join()
            except Cancelled:
                pass
        # stop the consumers; what is still buffered is checked below
        for c in consumers:
            c.cancel()
            try:
                c.join()
            except Cancelled:
                pass
        if kind == "queue":
            while not chan.empty():
                got.append(chan.get_nowait())
        else:
            while len(chan):
                got.append(chan.recv())

    pycoro.run(main)
    return put_ok, got


@settings(max_examples=scaled(60, 5), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(["queue", "channel"]),
    n_prod=st.integers(1, 4),
    n_cons=st.integers(1, 4),
    capacity=st.integers(0, 3),
)
def test_queue_and_channel_never_lose_or_duplicate(seed, kind, n_prod, n_cons, capacity):
    put_ok, got = _chaos_run(seed, kind, scaled(60, 10), n_prod, n_cons, capacity)
    assert len(got) == len(set(got)), "duplicated item"
    assert sorted(got) == sorted(put_ok), "lost or phantom item"


@settings(max_examples=scaled(60, 5), deadline=None)
@given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(["lock", "rlock", "sem", "cond"]),
       n=st.integers(2, 6))
def test_locks_never_lose_or_duplicate_ownership(seed, kind, n):
    """Under random cancellation: never two holders, and the primitive ends free."""
    rng = random.Random(seed)
    holders = []
    acquired = [0]

    def main():
        if kind == "lock":
            prim = pycoro.Lock()
        elif kind == "rlock":
            prim = pycoro.RLock()
        elif kind == "cond":
            prim = pycoro.Condition(pycoro.Lock())
        else:
            prim = pycoro.Semaphore(1)

        def worker():
            for _ in range(5):
                try:
                    prim.acquire()
                except Cancelled:
                    return
                try:
                    holders.append(pycoro.current_task())
                    assert len(holders) == 1, "two holders at once"
                    acquired[0] += 1
                    if kind == "cond" and rng.random() < 0.3:
                        prim.notify_all()
                        me = holders.pop()
                        try:
                            prim.wait(timeout=0.0)  # releases and re-acquires
                        finally:
                            holders.append(me)
                            assert len(holders) == 1, "two holders after wait()"
                    for _ in range(rng.randrange(3)):
                        pycoro.sleep(0)
                finally:
                    holders.pop()
                    prim.release()

        tasks = [pycoro.spawn(worker) for _ in range(n)]
        for _ in range(n * 3):
            for _ in range(rng.randrange(3)):
                pycoro.sleep(0)
            rng.choice(tasks).cancel()
        for t in tasks:
            try:
                t.join()
            except Cancelled:
                pass
        # it must be free now: a fresh non-blocking acquire succeeds
        assert prim.acquire(blocking=False)
        prim.release()

    pycoro.run(main)
    assert holders == []


def test_queue_join_timeout_and_rlock_condition_restores_depth():
    def main():
        q = pycoro.Queue()
        q.put(1)
        with pytest.raises(pycoro.Timeout):
            q.join(timeout=0.005)
        cond = pycoro.Condition()  # RLock inside
        with cond:
            with cond:
                assert cond.wait(0.001) is False  # released both levels, got both back
                assert cond._lock._count == 2
                other = pycoro.spawn(cond.acquire, timeout=0.001)
                assert other.join() is False
        assert cond._lock._owner is None

    pycoro.run(main)
