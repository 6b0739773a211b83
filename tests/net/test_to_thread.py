"""pycoro.to_thread: blocking work in the bounded pool, the hub keeps running."""
import contextvars
import threading

import pytest

import pycoro

VAR = contextvars.ContextVar("VAR", default="unset")


def test_result_exception_and_thread():
    def main():
        assert pycoro.to_thread(lambda a, b=0: a + b, 2, b=3) == 5
        assert pycoro.to_thread(threading.get_ident) != threading.get_ident()
        with pytest.raises(ZeroDivisionError):
            pycoro.to_thread(lambda: 1 / 0)
        VAR.set("task value")
        assert pycoro.to_thread(VAR.get) == "task value"  # runs in a copy of the task's context

    pycoro.run(main)


def test_other_tasks_run_while_a_thread_call_blocks_and_no_deadlock():
    # The only task is parked on a thread call that waits for an Event set by
    # another thread: the hub must wait (no Deadlock), and a second task must
    # run meanwhile (it is the one that releases the thread).
    release = threading.Event()

    def main():
        log = []

        def other():
            log.append("other ran")
            threading.Timer(0, release.set).start()

        pycoro.spawn(other)
        assert pycoro.to_thread(release.wait, 30) is True
        return log

    assert pycoro.run(main) == ["other ran"]


def test_only_a_thread_call_pending_is_not_a_deadlock():
    gate = threading.Event()

    def main():
        threading.Thread(target=gate.set).start()
        return pycoro.to_thread(gate.wait, 30)

    assert pycoro.run(main) is True


def test_cancel_abandons_the_wait_and_hub_stays_usable():
    gate = threading.Event()
    started = threading.Event()

    def blocked():
        started.set()
        gate.wait(30)
        return "late"

    def main():
        t = pycoro.spawn(pycoro.to_thread, blocked)
        pycoro.to_thread(started.wait, 30)
        t.cancel()
        with pytest.raises(pycoro.Cancelled):
            t.join()
        with pytest.raises(pycoro.Timeout):
            with pycoro.timeout(0.01):
                pycoro.to_thread(gate.wait, 30)
        gate.set()  # the abandoned calls finish in their threads, outcome dropped
        assert pycoro.to_thread(lambda: "after") == "after"

    pycoro.run(main)


def test_many_calls_bounded_pool():
    n = pycoro.max_threads()
    seen = set()
    lock = threading.Lock()

    def work(i):
        with lock:
            seen.add(threading.get_ident())
        return i * 2

    def main():
        tasks = [pycoro.spawn(pycoro.to_thread, work, i) for i in range(200)]
        return [t.join() for t in tasks]

    assert pycoro.run(main) == [i * 2 for i in range(200)]
    assert 1 <= len(seen) <= n


def test_outside_a_task():
    with pytest.raises(RuntimeError, match="to_thread"):
        pycoro.to_thread(int)
    with pytest.raises(TypeError):
        pycoro.run(pycoro.to_thread, 42)
