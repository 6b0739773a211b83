"""run/spawn/sleep, round-robin order, Task API, contextvars, introspection."""
import contextvars
import logging
import math
import time

import pytest

import pycoro
from pycoro import Cancelled


def test_run_returns_result_and_raises_exception():
    assert pycoro.run(lambda a, b=0: a + b, 2, b=3) == 5

    def boom():
        raise KeyError("x")

    with pytest.raises(KeyError):
        pycoro.run(boom)


def test_round_robin_is_strict():
    out = []

    def worker(tag):
        for _ in range(4):
            out.append(tag)
            pycoro.sleep(0)

    def main():
        ts = [pycoro.spawn(worker, t) for t in "abc"]
        for t in ts:
            t.join()

    pycoro.run(main)
    assert "".join(out) == "abc" * 4


def test_sleep0_goes_behind_every_ready_task():
    out = []

    def main():
        pycoro.spawn(out.append, 1)
        pycoro.spawn(out.append, 2)
        out.append("before")
        pycoro.sleep(0)
        out.append("after")

    pycoro.run(main)
    assert out == ["before", 1, 2, "after"]


def test_round_robin_survives_hub_passes():
    # Many more turns than Hub.POLL_EVERY: the order must not change when
    # control goes through the hub loop.
    n = 5
    rounds = 3 * pycoro.Hub.POLL_EVERY
    out = []

    def worker(i):
        for _ in range(rounds):
            out.append(i)
            pycoro.sleep(0)

    def main():
        for t in [pycoro.spawn(worker, i) for i in range(n)]:
            t.join()

    pycoro.run(main)
    assert out == list(range(n)) * rounds


def test_timers_fire_in_deadline_order():
    out = []

    def sleeper(d):
        pycoro.sleep(d)
        out.append(d)

    def main():
        ts = [pycoro.spawn(sleeper, d) for d in (0.03, 0.01, 0.02)]
        for t in ts:
            t.join()

    t0 = time.monotonic()
    pycoro.run(main)
    assert out == [0.01, 0.02, 0.03]
    assert time.monotonic() - t0 >= 0.03


def test_timer_not_starved_by_busy_yielders():
    # A task that sleeps must wake up although others never stop yielding.
    stop = []

    def spinner():
        while not stop:
            pycoro.sleep(0)

    def main():
        spinners = [pycoro.spawn(spinner) for _ in range(3)]
        t0 = time.monotonic()
        pycoro.sleep(0.02)
        stop.append(1)
        for s in spinners:
            s.join()
        return time.monotonic() - t0

    assert pycoro.run(main) < 5


def test_spawn_later():
    out = []

    def main():
        t = pycoro.spawn_later(0.02, out.append, "late")
        pycoro.spawn(out.append, "soon")
        t0 = time.monotonic()
        t.join()
        return time.monotonic() - t0

    assert pycoro.run(main) >= 0.015
    assert out == ["soon", "late"]


def test_task_api():
    def main():
        ok = pycoro.spawn(lambda: 42)
        bad = pycoro.spawn(lambda: 1 / 0)
        assert not ok.done()
        assert ok.join() == 42
        assert ok.done() and ok.result() == 42 and ok.exception() is None
        assert not ok.cancelled()
        with pytest.raises(ZeroDivisionError):
            bad.join()
        assert isinstance(bad.exception(), ZeroDivisionError)
        with pytest.raises(ZeroDivisionError):
            bad.result()
        assert ok.cancel() is False
        named = pycoro.spawn(int)
        named.name = "worker-1"
        assert named.name == "worker-1" and "worker-1" in repr(named)
        pending = pycoro.spawn(int)
        with pytest.raises(RuntimeError):
            pending.result()
        pending.join()

    pycoro.run(main)


def test_done_callbacks_run_from_the_hub():
    seen = []

    def main():
        ev = pycoro.Event()
        t = pycoro.spawn(lambda: "r")
        t.add_done_callback(lambda task: seen.append(("cb", task.result(), pycoro.current_task())))
        t.add_done_callback(lambda task: ev.set())
        t.join()
        ev.wait()
        ev.clear()
        t.add_done_callback(lambda task: (seen.append("late"), ev.set()))
        assert seen == [("cb", "r", None)]  # ran in the hub loop, not in a task
        ev.wait()

    pycoro.run(main)
    assert seen == [("cb", "r", None), "late"]


def test_contextvars_copied_at_spawn():
    var = contextvars.ContextVar("var", default="unset")

    def child():
        before = var.get()
        var.set("child")
        return before

    def main():
        var.set("parent")
        t = pycoro.spawn(child)
        var.set("parent-changed")
        assert t.join() == "parent"
        assert var.get() == "parent-changed"  # the child's set() stayed in the child
        return var.get()

    assert pycoro.run(main) == "parent-changed"
    assert var.get() == "unset"


def test_contextvars_isolated_when_spawner_context_is_empty():
    var = contextvars.ContextVar("var2", default="unset")

    def child(value):
        assert var.get() == "unset"
        var.set(value)
        pycoro.sleep(0)  # the sibling sets its own value meanwhile
        return var.get()

    def main():
        assert len(contextvars.copy_context()) == 0
        a = pycoro.spawn(child, "a")
        b = pycoro.spawn(child, "b")
        assert (a.join(), b.join()) == ("a", "b")
        return var.get()

    assert contextvars.Context().run(pycoro.run, main) == "unset"


def test_current_task_and_tasks_introspection():
    def main():
        me = pycoro.current_task()
        assert me is not None and me.name == "main"
        ev = pycoro.Event()
        waiting = pycoro.spawn(ev.wait)
        ready = pycoro.spawn(pycoro.sleep, 0)
        pycoro.sleep(0)
        ready2 = pycoro.spawn(int)
        states = {t: (s, n) for t, s, n in pycoro.get_hub().tasks()}
        assert states[me][0] == "running"
        assert states[waiting][0] == "waiting"
        assert states[ready2][0] == "pending"
        assert states[waiting][1] > 0  # a suspended task has saved stack bytes
        ev.set()
        for t in (waiting, ready, ready2):
            t.join()
        assert [t for t, *_ in pycoro.get_hub().tasks()] == [me]

    assert pycoro.current_task() is None
    pycoro.run(main)


def test_tasks_left_at_main_end_are_cancelled_and_joined():
    log = []

    def forever():
        try:
            pycoro.Event().wait()
        except Cancelled:
            log.append("cancelled")
            raise
        finally:
            log.append("finally")

    def main():
        pycoro.spawn(forever)
        pycoro.spawn(forever)
        pycoro.sleep(0)
        return "main done"

    assert pycoro.run(main) == "main done"
    assert log == ["cancelled", "finally"] * 2
    assert pycoro.get_hub().tasks() == []


def test_unretrieved_exception_is_reported(caplog):
    def main():
        pycoro.spawn(lambda: 1 / 0)
        pycoro.sleep(0)

    with caplog.at_level(logging.ERROR, logger="pycoro"):
        pycoro.run(main)
        import gc
        gc.collect()
    msgs = [r for r in caplog.records if "never retrieved" in r.getMessage()]
    assert len(msgs) == 1 and msgs[0].exc_info[0] is ZeroDivisionError


def test_retrieved_exception_is_not_reported(caplog):
    def main():
        t = pycoro.spawn(lambda: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            t.join()

    with caplog.at_level(logging.ERROR, logger="pycoro"):
        pycoro.run(main)
        import gc
        gc.collect()
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("bad", [-1, -0.001, math.nan, float("-inf")])
def test_bad_timeouts_raise_value_error(bad):
    def main():
        ev = pycoro.Event()
        t = pycoro.spawn(int)
        for call in (
            lambda: pycoro.sleep(bad),
            lambda: ev.wait(bad),
            lambda: t.join(bad),
            lambda: pycoro.timeout(bad),
            lambda: pycoro.move_on_after(bad),
            lambda: pycoro.Lock().acquire(timeout=bad if bad != -1 else -2),
            lambda: pycoro.Queue().get(timeout=bad),
            lambda: pycoro.Channel().recv(timeout=bad),
            lambda: pycoro.select(recv=[pycoro.Channel()], timeout=bad),
            lambda: pycoro.wait([t], timeout=bad),
            lambda: pycoro.spawn_later(bad, int),
        ):
            with pytest.raises(ValueError):
                call()
        t.join()

    pycoro.run(main)


def test_non_number_timeout_is_type_error():
    def main():
        with pytest.raises(TypeError):
            pycoro.sleep("1")

    pycoro.run(main)


def test_join_from_itself_is_runtime_error():
    def main():
        with pytest.raises(RuntimeError, match="itself"):
            pycoro.current_task().join()

    pycoro.run(main)


def test_spawn_non_callable_is_type_error():
    def main():
        with pytest.raises(TypeError):
            pycoro.spawn(42)
        with pytest.raises(TypeError):
            pycoro.spawn_later(0, "nope")

    pycoro.run(main)
    with pytest.raises(TypeError):
        pycoro.run(None)


@pytest.mark.parametrize("call", [
    lambda: pycoro.sleep(0),
    lambda: pycoro.sleep(0.1),
    lambda: pycoro.spawn(int),
    lambda: pycoro.Event().wait(),
    lambda: pycoro.Channel().recv(),
    lambda: pycoro.Queue().get(),
    lambda: pycoro.wait_readable(0),
    lambda: pycoro.timeout(1).__enter__(),
], ids=["sleep0", "sleep", "spawn", "event", "channel", "queue", "fd", "timeout"])
def test_blocking_outside_run_is_a_clear_runtime_error(call):
    with pytest.raises(RuntimeError, match=r"inside pycoro\.run\(\)"):
        call()


def test_nested_run_is_refused():
    def main():
        with pytest.raises(RuntimeError, match="nested"):
            pycoro.run(int)
        return "ok"

    assert pycoro.run(main) == "ok"


def test_nonblocking_calls_work_outside_run():
    ev = pycoro.Event()
    ev.set()
    assert ev.wait() is True  # already set: does not block
    lock = pycoro.Lock()
    assert lock.acquire() and not lock.acquire(blocking=False)
    lock.release()
    q = pycoro.Queue()
    q.put(1)
    assert q.get() == 1


def test_keyboard_interrupt_in_a_task_stops_run():
    finals = []

    def victim():
        try:
            pycoro.Event().wait()
        finally:
            finals.append("victim")

    def main():
        pycoro.spawn(victim)
        pycoro.spawn(lambda: (_ for _ in ()).throw(KeyboardInterrupt))
        pycoro.Event().wait()

    with pytest.raises(KeyboardInterrupt):
        pycoro.run(main)
    assert finals == ["victim"]


def test_remove_done_callback():
    seen = []

    def main():
        t = pycoro.spawn(int)
        cb = seen.append
        t.add_done_callback(cb)
        t.add_done_callback(cb)
        assert t.remove_done_callback(cb) == 2
        ev = pycoro.Event()
        t.add_done_callback(lambda task: ev.set())  # callbacks run in order
        t.join()
        ev.wait()

    pycoro.run(main)
    assert seen == []


def test_hub_tasks_introspection_snapshot_types():
    def main():
        info = pycoro.get_hub().tasks()
        assert len(info) == 1
        task, state, saved = info[0]
        assert isinstance(task, pycoro.Task) and state == "running" and isinstance(saved, int)

    pycoro.run(main)


def test_keyboard_interrupt_in_the_loop_unwinds_tasks():
    finals = []

    def victim():
        try:
            pycoro.Event().wait()
        finally:
            finals.append("victim")

    def interrupt():
        raise KeyboardInterrupt

    def main():
        pycoro.spawn(victim)
        pycoro.sleep(0)
        pycoro.get_hub().call_soon_threadsafe(interrupt)  # runs in the hub loop
        pycoro.Event().wait(timeout=30)
        finals.append("main not interrupted")

    with pytest.raises(KeyboardInterrupt):
        pycoro.run(main)
    assert finals == ["victim"]  # main was cancelled too, before it could append
    assert pycoro.run(lambda: "again") == "again"
