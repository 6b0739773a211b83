"""The parking primitive (pycoro._hub._parking) that every blocking operation
is built on: park() / reschedule() / Waiter, and how interruptions meet it."""
import pytest

import pycoro
from pycoro import Cancelled
from pycoro._hub._parking import PARKED, RUNNABLE, Waiter, park, reschedule


def _parked_child(log):
    """Spawn a task that parks once and logs what park() gave it."""
    def child():
        try:
            log.append(("value", park()))
        except BaseException as e:  # noqa: B902 -- the test inspects whatever arrives
            log.append(("error", e))

    t = pycoro.spawn(child)
    pycoro.sleep(0)  # let it run up to park()
    assert t._phase is PARKED and t.state == "waiting"
    return t


def test_reschedule_with_value_is_what_park_returns():
    log = []

    def main():
        t = _parked_child(log)
        reschedule(t, "hello")
        assert t._phase is RUNNABLE and t.state == "ready"
        t.join()

    pycoro.run(main)
    assert log == [("value", "hello")]


def test_reschedule_with_error_is_raised_by_park():
    log = []
    err = KeyError("k")

    def main():
        t = _parked_child(log)
        reschedule(t, error=err)
        t.join()

    pycoro.run(main)
    assert log == [("error", err)]


def test_cancel_of_a_parked_task_is_raised_by_park():
    log = []

    def main():
        t = _parked_child(log)
        t.cancel("stop")
        t.join()

    pycoro.run(main)
    [(kind, exc)] = log
    assert kind == "error" and isinstance(exc, Cancelled) and exc.args == ("stop",)


def test_reschedule_of_a_task_that_is_not_parked_raises():
    def main():
        me = pycoro.current_task()
        with pytest.raises(RuntimeError, match="not parked"):
            reschedule(me)  # running
        ready = pycoro.spawn(lambda: None)
        with pytest.raises(RuntimeError, match="not parked"):
            reschedule(ready)  # in the run queue, never started
        ready.join()
        with pytest.raises(RuntimeError, match="not parked"):
            reschedule(ready)  # done
        log = []
        t = _parked_child(log)
        reschedule(t, 1)
        with pytest.raises(RuntimeError, match="not parked"):
            reschedule(t, 2)  # already rescheduled: the first value stands
        t.join()
        return log

    assert pycoro.run(main) == [("value", 1)]


def test_pending_interruption_is_raised_instead_of_parking():
    def main():
        me = pycoro.current_task()
        me.cancel()  # pending: delivered at the next suspension point
        with pytest.raises(Cancelled):
            park()
        assert me._phase is not PARKED
        return "after"

    assert pycoro.run(main) == "after"


def test_waiter_granted_after_the_interruption_keeps_its_result():
    # The task was interrupted while parked, and its waker granted the
    # waiter before the task ran again: the task sees the interruption and
    # the grant (as Lock/Queue rely on to never lose a hand-off).
    seen = []

    def main():
        holder = {}

        def child():
            w = holder["w"] = Waiter(pycoro.current_task())
            try:
                park()
            except Cancelled:
                seen.append(("cancelled", w.granted, w.value))

        t = pycoro.spawn(child)
        pycoro.sleep(0)
        t.cancel()
        holder["w"].wake("item")  # not parked any more: recorded, no reschedule
        assert holder["w"].task is None
        holder["w"].wake("again")  # a finished waiter ignores later wakes
        t.join()

    pycoro.run(main)
    assert seen == [("cancelled", True, "item")]


def test_park_outside_a_task_is_a_clear_error():
    with pytest.raises(RuntimeError, match=r"park\(\) must be called from a task"):
        park()


class _FullQueue:
    """A run queue whose next append fails as it would with no memory left."""

    def __init__(self, ready):
        self.ready = ready

    def append(self, task):
        raise MemoryError

    def __getattr__(self, name):
        return getattr(self.ready, name)


@pytest.mark.parametrize("how", ["reschedule", "waiter"])
def test_waking_without_memory_raises_and_leaves_the_task_parked(how):
    # A wake-up that cannot queue the task must fail as a whole: a task
    # marked runnable but in no queue would never run again (the RLIMIT_AS
    # sweep's hub children hung on it).
    log = []

    def main():
        hub = pycoro.get_hub()
        if how == "waiter":
            def child():
                log.append(("value", park()))
            t = pycoro.spawn(child)
            pycoro.sleep(0)
            w = Waiter(t)
        else:
            t = _parked_child(log)
        ready = hub._ready
        hub._ready = _FullQueue(ready)
        try:
            with pytest.raises(MemoryError):
                reschedule(t, "v") if how == "reschedule" else w.wake("v")
        finally:
            hub._ready = ready
        assert t._phase is PARKED
        if how == "waiter":
            assert w.task is t and not w.granted
            w.wake("v")
        else:
            reschedule(t, "v")
        t.join()

    pycoro.run(main)
    assert log == [("value", "v")]


def test_run_that_cannot_undo_its_sigint_handler_leaves_the_hub_usable(monkeypatch):
    # Under RLIMIT_AS the signal module raised MemoryError from run()'s
    # clean-up; the hub stayed marked running and every later run() raised
    # "cannot be nested" (found by the sweep's hub children).  The undo is
    # retried by the next run().
    import pycoro._hub._run as run_mod
    calls = []
    real_install = run_mod.install_sigint

    def install(hub):
        real_undo = real_install(hub)

        def undo():
            calls.append(len(calls))
            if len(calls) == 1:
                raise MemoryError
            if real_undo is not None:
                real_undo()
        return undo

    monkeypatch.setattr(run_mod, "install_sigint", install)
    with pytest.raises(MemoryError):
        pycoro.run(lambda: 1)
    hub = pycoro.get_hub()
    assert not hub._running and hub._main is None
    assert pycoro.run(lambda: 2) == 2
    # the failed undo ran again before the second run installed its own
    assert calls == [0, 1, 2]


def test_tasks_dying_of_memory_error_do_not_hold_the_interpreters_reserve():
    # CPython keeps 16 MemoryError instances for when nothing can be
    # allocated; a task's outcome keeps a plain MemoryError as its traceback
    # only, so 100 dead tasks hold none of them (under RLIMIT_AS the 17th
    # allocation failure aborted the interpreter).
    import gc

    def die():
        raise MemoryError

    def main():
        ts = [pycoro.spawn(die) for _ in range(100)]
        pycoro.sleep(0)
        assert all(t.done() for t in ts)
        gc.collect()
        held = [o for o in gc.get_objects() if type(o) is MemoryError]
        assert held == []
        # still the task's exception, with its traceback, for whoever asks
        with pytest.raises(MemoryError) as info:
            ts[0].join()
        assert any(f.name == "die" for f in __import__("traceback").extract_tb(info.value.__traceback__))
        assert all(type(t.exception()) is MemoryError for t in ts[1:])
        assert ts[1].exception() is ts[1].exception()   # one object, once asked for

    pycoro.run(main)


def test_memory_errors_raised_while_handling_others_are_packed_with_their_context():
    # Failing while handling a MemoryError (a log call, a finally block)
    # chains MemoryErrors through __context__: the task keeps none of them,
    # and gives back the same chain -- each its own traceback, in order,
    # down to the first context that is not a plain MemoryError, that one
    # as it was.
    import gc

    cause = ValueError("first")
    seen = []        # per task: the tracebacks of the chain, outermost first

    def handling(depth):
        if depth == 0:
            raise cause
        try:
            handling(depth - 1)
        except BaseException:
            raise MemoryError

    def die():
        try:
            handling(3)
        except MemoryError as e:
            tbs = []
            while e is not cause:
                tbs.append(e.__traceback__)
                e = e.__context__
            seen.append(tbs)
            del e
            raise

    def main():
        ts = [pycoro.spawn(die) for _ in range(20)]
        pycoro.sleep(0)
        gc.collect()
        assert [o for o in gc.get_objects() if type(o) is MemoryError] == []
        for t, tbs in zip(ts, seen):
            e = t.exception()
            assert e is t.exception()       # made once
            chain = []
            while type(e) is MemoryError:
                assert not e.args and e.__cause__ is None and not e.__suppress_context__
                chain.append(e.__traceback__)
                e = e.__context__
            assert e is cause
            assert len(chain) == len(tbs) == 3
            assert chain[1:] == tbs[1:]       # the inner ones' own tracebacks
            tb = chain[0]                     # the outer one's grew on its way out
            while tb is not None and tb is not tbs[0]:
                tb = tb.tb_next
            assert tb is tbs[0]

    pycoro.run(main)


def test_a_memory_error_raised_from_none_keeps_its_flag():
    def die():
        try:
            raise KeyError
        except KeyError:
            raise MemoryError from None

    def main():
        t = pycoro.spawn(die)
        pycoro.sleep(0)
        err = t.exception()
        assert type(err) is MemoryError and err.__suppress_context__
        assert type(err.__context__) is KeyError

    pycoro.run(main)


def test_a_memory_error_with_arguments_is_kept_as_it_is():
    err = MemoryError("custom")

    def die():
        raise err

    def main():
        t = pycoro.spawn(die)
        with pytest.raises(MemoryError) as info:
            t.join()
        assert info.value is err

    pycoro.run(main)
