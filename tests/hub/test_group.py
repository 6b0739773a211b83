"""TaskGroup, wait(), deadlock detection, threads."""
import threading
import time

import pytest

import pycoro
from pycoro import Cancelled, Deadlock


def test_taskgroup_waits_for_all_children():
    def main():
        done = []
        with pycoro.TaskGroup() as tg:
            for d in (0.01, 0, 0.005):
                tg.spawn(lambda d=d: (pycoro.sleep(d), done.append(d)))
        assert sorted(done) == [0, 0.005, 0.01]

    pycoro.run(main)


def test_taskgroup_first_failure_cancels_siblings_and_body():
    log = []

    def slow():
        try:
            pycoro.sleep(10)
        except Cancelled:
            log.append("sibling cancelled")
            raise

    def fail(exc):
        pycoro.sleep(0)
        raise exc

    def fail_in_cleanup():
        try:
            pycoro.sleep(10)
        except Cancelled:
            raise KeyError("cleanup failed")

    def main():
        t0 = time.monotonic()
        with pytest.raises(ExceptionGroup) as info:
            with pycoro.TaskGroup() as tg:
                tg.spawn(slow)
                tg.spawn(fail, ValueError("v"))
                tg.spawn(fail_in_cleanup)
                pycoro.sleep(10)  # the body is cancelled too
                log.append("body not cancelled")
        assert time.monotonic() - t0 < 5
        errs = info.value.exceptions
        assert {type(e) for e in errs} == {ValueError, KeyError}
        return "caller continues"

    assert pycoro.run(main) == "caller continues"
    assert log == ["sibling cancelled"]


def test_taskgroup_body_error_cancels_children():
    log = []

    def child():
        try:
            pycoro.Event().wait()
        finally:
            log.append("child finally")

    def main():
        with pytest.raises(ExceptionGroup) as info:
            with pycoro.TaskGroup() as tg:
                tg.spawn(child)
                pycoro.sleep(0)
                raise RuntimeError("body")
        assert [type(e) for e in info.value.exceptions] == [RuntimeError]

    pycoro.run(main)
    assert log == ["child finally"]


def test_taskgroup_cancelled_from_outside():
    log = []

    def child():
        try:
            pycoro.Event().wait()
        except Cancelled:
            log.append("child cancelled")
            raise

    def owner():
        with pycoro.TaskGroup() as tg:
            tg.spawn(child)
            tg.spawn(child)
        log.append("not reached")

    def main():
        t = pycoro.spawn(owner)
        pycoro.sleep(0)
        pycoro.sleep(0)
        t.cancel()
        with pytest.raises(Cancelled):
            t.join()

    pycoro.run(main)
    assert log == ["child cancelled", "child cancelled"]


def test_wait_return_when():
    def main():
        ev = pycoro.Event()
        fast = pycoro.spawn(lambda: "fast")
        slow = pycoro.spawn(ev.wait)
        bad = pycoro.spawn(lambda: 1 / 0)
        done, pending = pycoro.wait([fast, slow], return_when=pycoro.FIRST_COMPLETED)
        assert done == {fast} and pending == {slow}
        done, pending = pycoro.wait([slow, bad], return_when=pycoro.FIRST_EXCEPTION)
        assert done == {bad} and pending == {slow}
        done, pending = pycoro.wait([slow], timeout=0.005)
        assert done == set() and pending == {slow}
        pycoro.spawn(ev.set)
        done, pending = pycoro.wait([fast, slow, bad])
        assert done == {fast, slow, bad} and pending == set()
        assert not slow._joiners  # wait() unhooked itself
        with pytest.raises(ZeroDivisionError):
            bad.result()
        with pytest.raises(ValueError):
            pycoro.wait([fast], return_when="sometimes")

    pycoro.run(main)


# ---------------------------------------------------------------- deadlock

def test_deadlock_detected_and_names_blocked_tasks():
    log = []

    def stuck(lock):
        try:
            lock.acquire()
        finally:
            log.append("unwound")

    def main():
        lock = pycoro.Lock()
        lock.acquire()
        t = pycoro.spawn(stuck, lock)
        t.name = "stuck-worker"
        pycoro.Event().wait()

    t0 = time.monotonic()
    with pytest.raises(Deadlock) as info:
        pycoro.run(main)
    assert time.monotonic() - t0 < 5
    assert "stuck-worker" in str(info.value) and "main" in str(info.value)
    assert {t.name for t in info.value.tasks} == {"main", "stuck-worker"}
    assert log == ["unwound"]
    assert pycoro.run(lambda: "hub usable again") == "hub usable again"


def test_no_deadlock_while_a_timer_or_fd_can_wake():
    def main():
        ev = pycoro.Event()
        pycoro.spawn_later(0.01, ev.set)
        return ev.wait()

    assert pycoro.run(main) is True


def test_channel_deadlock():
    with pytest.raises(Deadlock):
        pycoro.run(lambda: pycoro.Channel().send(1))


# ---------------------------------------------------------------- threads

def test_one_hub_per_thread():
    hubs = []
    t = threading.Thread(target=lambda: hubs.append(pycoro.get_hub()))
    t.start()
    t.join()
    assert hubs[0] is not pycoro.get_hub()
    assert pycoro.get_hub() is pycoro.get_hub()


def test_call_soon_threadsafe_wakes_the_hub():
    def main():
        hub = pycoro.get_hub()
        ev = pycoro.Event()
        result = []

        def worker():
            result.append(threading.get_ident())
            hub.call_soon_threadsafe(ev.set)

        with hub.hold():  # another thread will wake us: not a deadlock
            th = threading.Thread(target=worker)
            th.start()
            t0 = time.monotonic()
            # The hub blocks in select() until the timer at +30 s, unless the
            # thread's wake-up byte interrupts it.
            assert ev.wait(timeout=30) is True
            assert time.monotonic() - t0 < 10
        th.join()
        return result[0] != threading.get_ident()

    assert pycoro.run(main) is True


def test_hold_keeps_an_idle_hub_waiting_for_other_threads():
    def main():
        hub = pycoro.get_hub()
        ev = pycoro.Event()
        th = threading.Thread(target=lambda: hub.call_soon_threadsafe(ev.set))
        with hub.hold():
            th.start()
            assert ev.wait() is True  # no timer, no fd: only hold() prevents Deadlock
        th.join()

    pycoro.run(main)


def test_call_soon_threadsafe_before_run_is_queued():
    hub = pycoro.get_hub()
    seen = []
    hub.call_soon_threadsafe(seen.append, "queued")
    assert pycoro.run(lambda: pycoro.sleep(0) or list(seen)) == ["queued"]
    with pytest.raises(TypeError):
        hub.call_soon_threadsafe(42)


def test_hubs_run_in_parallel_threads():
    results = {}

    def thread_main(k):
        def main():
            out = []
            ts = [pycoro.spawn(lambda i=i: (pycoro.sleep(0), out.append(i))) for i in range(50)]
            for t in ts:
                t.join()
            return sum(out)
        results[k] = pycoro.run(main)

    ths = [threading.Thread(target=thread_main, args=(k,)) for k in range(3)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    assert results == {k: sum(range(50)) for k in range(3)}


def test_cross_thread_use_is_a_clear_error():
    def main():
        ev = pycoro.Event()
        waiter = pycoro.spawn(ev.wait)
        pycoro.sleep(0)
        errors = []

        def foreign():
            for call in (ev.set, waiter.cancel):
                try:
                    call()
                except RuntimeError as e:
                    errors.append(str(e))

        th = threading.Thread(target=foreign)
        th.start()
        th.join()
        assert len(errors) == 2 and all("call_soon_threadsafe" in e for e in errors)
        ev.set()
        waiter.join()

    pycoro.run(main)


def test_task_that_ignores_cancel_is_unwound_after_deadlock():
    import gc
    log = []

    def stubborn():
        ev = pycoro.Event()
        try:
            ev.wait()
        except Cancelled:
            log.append("ignored cancel")
        try:
            ev.wait()
        finally:
            log.append("unwound by FiberExit")

    def main():
        pycoro.spawn(stubborn)
        pycoro.Event().wait()

    try:
        pycoro.run(main)
    except Deadlock as e:
        assert len(e.tasks) == 2
    else:
        pytest.fail("no Deadlock")
    e = None
    gc.collect()
    assert log == ["ignored cancel", "unwound by FiberExit"]
    assert pycoro.run(lambda: 7) == 7
