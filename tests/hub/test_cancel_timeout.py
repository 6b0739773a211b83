"""Cancellation, timeout / move_on_after scopes, shield."""
import os
import time

import pytest

import pycoro
from pycoro import Cancelled, Timeout


def test_cancel_raises_at_suspension_point_and_runs_finally():
    log = []

    def victim():
        try:
            log.append("start")
            pycoro.sleep(10)
            log.append("not reached")
        except Cancelled as e:
            log.append(("cancelled", e.args))
            raise
        finally:
            log.append("finally")

    def main():
        t = pycoro.spawn(victim)
        pycoro.sleep(0)
        assert t.cancel("stop") is True
        with pytest.raises(Cancelled):
            t.join()
        assert t.cancelled() and t.done()
        with pytest.raises(Cancelled):
            t.exception()

    t0 = time.monotonic()
    pycoro.run(main)
    assert time.monotonic() - t0 < 5
    assert log == ["start", ("cancelled", ("stop",)), "finally"]


def test_cancel_is_delivered_right_away():
    # The cancelled task runs (raising) before tasks queued after the cancel.
    order = []

    def victim():
        try:
            pycoro.Event().wait()
        except Cancelled:
            order.append("victim")

    def main():
        t = pycoro.spawn(victim)
        pycoro.sleep(0)
        t.cancel()
        pycoro.spawn(order.append, "later")
        pycoro.sleep(0)
        pycoro.sleep(0)

    pycoro.run(main)
    assert order == ["victim", "later"]


def test_cancel_ready_task_gets_cancelled_not_resumed():
    log = []

    def yielder():
        try:
            pycoro.sleep(0)
            log.append("resumed")
        except Cancelled:
            log.append("cancelled")

    def main():
        t = pycoro.spawn(yielder)
        pycoro.sleep(0)  # yielder is now in the run queue after its sleep(0)
        t.cancel()
        t.join()

    pycoro.run(main)
    assert log == ["cancelled"]


def test_cancel_unstarted_task_never_runs():
    ran = []

    def main():
        t = pycoro.spawn(ran.append, 1)
        t.cancel()
        with pytest.raises(Cancelled):
            t.join()
        late = pycoro.spawn_later(0.01, ran.append, 2)
        late.cancel()
        with pytest.raises(Cancelled):
            late.join()
        assert t.cancelled() and late.cancelled()

    pycoro.run(main)
    assert ran == []


def test_self_cancel_takes_effect_at_next_suspension():
    log = []

    def main():
        me = pycoro.current_task()

        def child():
            me.cancel()
            log.append("child")

        pycoro.spawn(child)
        pycoro.current_task().cancel()
        log.append("still running")
        with pytest.raises(Cancelled):
            pycoro.sleep(0)
        log.append("raised")

    pycoro.run(main)
    assert log == ["still running", "child", "raised"]


def test_cancel_during_lock_wait_leaves_lock_consistent():
    lock = pycoro.Lock()

    def main():
        lock.acquire()
        waiters = [pycoro.spawn(lock.acquire) for _ in range(3)]
        pycoro.sleep(0)
        waiters[1].cancel()
        pycoro.sleep(0)
        assert waiters[1].cancelled()
        lock.release()  # goes to waiters[0]
        assert waiters[0].join() is True
        lock.release()  # goes to waiters[2], skipping the cancelled one
        assert waiters[2].join() is True
        lock.release()
        assert not lock.locked()

    pycoro.run(main)


def test_cancel_during_io_wait():
    r, w = os.pipe()
    try:
        def reader():
            pycoro.wait_readable(r)

        def main():
            t = pycoro.spawn(reader)
            pycoro.sleep(0)
            assert t.state == "waiting"
            t.cancel()
            with pytest.raises(Cancelled):
                t.join()
            # The fd is free again: a new waiter works.
            t2 = pycoro.spawn(reader)
            pycoro.sleep(0)
            os.write(w, b"x")
            t2.join()

        pycoro.run(main)
    finally:
        os.close(r)
        os.close(w)


# ---------------------------------------------------------------- timeouts

def _deep(n, ev):
    if n == 0:
        ev.wait()
        return "not reached"
    return _deep(n - 1, ev)


def test_timeout_fires_several_frames_deep():
    def main():
        t0 = time.monotonic()
        with pytest.raises(Timeout) as info:
            with pycoro.timeout(0.02) as scope:
                _deep(20, pycoro.Event())
        assert info.value.scope is scope and scope.fired
        assert isinstance(info.value, TimeoutError)
        return time.monotonic() - t0

    assert 0.015 <= pycoro.run(main) < 5


def test_nested_scopes_report_which_fired():
    def main():
        # inner fires first
        with pycoro.timeout(5) as outer:
            with pytest.raises(Timeout) as info:
                with pycoro.timeout(0.01) as inner:
                    _deep(5, pycoro.Event())
        assert info.value.scope is inner and inner.fired and not outer.fired
        # outer fires first: the inner scope must let it through
        with pytest.raises(Timeout) as info:
            with pycoro.timeout(0.01) as outer:
                with pycoro.timeout(5) as inner:
                    _deep(5, pycoro.Event())
        assert info.value.scope is outer and outer.fired and not inner.fired
        # move_on_after inside timeout: the outer deadline still ends everything
        with pytest.raises(Timeout) as info:
            with pycoro.timeout(0.01) as outer:
                with pycoro.move_on_after(5) as inner:
                    pycoro.sleep(10)
                pytest.fail("outer deadline ignored")
        assert info.value.scope is outer and not inner.cancelled_caught

    pycoro.run(main)


def test_equal_deadlines_outer_wins():
    def main():
        with pycoro.move_on_after(0.01) as outer:
            with pycoro.move_on_after(0.01) as inner:
                pycoro.sleep(1)
            pytest.fail("outer scope should have ended the block")
        assert outer.cancelled_caught and not inner.cancelled_caught

    pycoro.run(main)


def test_move_on_after():
    def main():
        with pycoro.move_on_after(0.01) as scope:
            pycoro.sleep(5)
        assert scope.cancelled_caught and scope.fired
        with pycoro.move_on_after(5) as scope2:
            pycoro.sleep(0)
        assert not scope2.cancelled_caught and not scope2.fired
        return "after"

    assert pycoro.run(main) == "after"


def test_scope_exit_cancels_its_timer():
    # A scope left early must not fire later, nor keep the hub alive.
    def main():
        for _ in range(100):
            with pycoro.timeout(0.005):
                pycoro.sleep(0)
        pycoro.sleep(0.02)  # past every deadline: nothing may fire here
        hub = pycoro.get_hub()
        return sum(1 for e in hub._timers if e[2] is not None)

    assert pycoro.run(main) == 0


def test_timeout_zero_fires_at_first_suspension():
    def main():
        log = []
        with pycoro.move_on_after(0) as scope:
            log.append("runs until it blocks")
            pycoro.sleep(0)
            log.append("not reached")
        assert scope.cancelled_caught
        return log

    assert pycoro.run(main) == ["runs until it blocks"]


def test_blocking_calls_take_timeout():
    def main():
        never = pycoro.spawn(pycoro.Event().wait)
        assert pycoro.Event().wait(0.005) is False
        lock = pycoro.Lock()
        lock.acquire()
        assert lock.acquire(timeout=0.005) is False
        sem = pycoro.Semaphore(0)
        assert sem.acquire(timeout=0.005) is False
        cond = pycoro.Condition()
        with cond:
            assert cond.wait(0.005) is False
        import queue
        with pytest.raises(queue.Empty):
            pycoro.Queue().get(timeout=0.005)
        full = pycoro.Queue(1)
        full.put(1)
        with pytest.raises(queue.Full):
            full.put(2, timeout=0.005)
        with pytest.raises(Timeout):
            pycoro.Channel().recv(timeout=0.005)
        with pytest.raises(Timeout):
            pycoro.Channel().send(1, timeout=0.005)
        with pytest.raises(Timeout):
            pycoro.select(recv=[pycoro.Channel()], timeout=0.005)
        with pytest.raises(Timeout):
            never.join(timeout=0.005)
        r, w = os.pipe()
        try:
            with pytest.raises(Timeout):
                pycoro.wait_readable(r, timeout=0.005)
        finally:
            os.close(r)
            os.close(w)
        never.cancel()
        # every timed-out waiter left nothing behind
        assert lock.locked() and full.qsize() == 1

    pycoro.run(main)


# ---------------------------------------------------------------- shield

def test_shield_defers_cancel_until_block_ends():
    log = []

    def victim():
        try:
            with pycoro.shield():
                pycoro.sleep(0.02)
                log.append("cleanup finished")
            log.append("not reached")
        except Cancelled:
            log.append("cancelled after shield")

    def main():
        t = pycoro.spawn(victim)
        pycoro.sleep(0)
        t.cancel()
        t.join()

    pycoro.run(main)
    assert log == ["cleanup finished", "cancelled after shield"]


def test_shield_defers_outer_timeout_but_not_inner():
    def main():
        log = []
        with pycoro.move_on_after(0.005) as outer:
            with pycoro.shield():
                pycoro.sleep(0.02)
                log.append("shielded sleep done")
                with pycoro.move_on_after(0.005) as inner:
                    pycoro.sleep(5)
                log.append(("inner fired", inner.cancelled_caught))
            log.append("not reached")
        log.append(("outer", outer.cancelled_caught))
        return log

    assert pycoro.run(main) == ["shielded sleep done", ("inner fired", True), ("outer", True)]


def test_deferred_timeout_dropped_when_its_scope_is_gone():
    # A timeout deferred by a shield is delivered at the shield's end; the
    # scope then catches it (and nothing leaks past the scope).
    def main():
        with pycoro.move_on_after(0.001) as scope:
            with pycoro.shield():
                pycoro.sleep(0.01)
        pycoro.sleep(0.01)
        return scope.cancelled_caught

    assert pycoro.run(main) is True
