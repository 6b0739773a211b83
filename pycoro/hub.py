"""The hub: a round-robin scheduler for `Fiber`s, in plain Python.

One hub per thread (`get_hub()`).  `run(main)` runs `main` as a task and
drives the hub in the calling fiber until `main` finishes; every other task
still alive then is cancelled and joined.  `run(main, hubs=N)` runs N hubs,
one OS thread each (main on hub 0); `spawn_on` places a task on one of them,
where it stays, and tasks, channels and sync objects work across them (see
pycoro/_hub/_multi.py).  Tasks are `Fiber` subclasses kept
in a FIFO run queue; a task that blocks switches *directly* to the next ready
task (one fiber switch per yield), and control passes through the hub loop
only when the run queue is empty or once every `Hub.POLL_EVERY` turns (so
timers, fd readiness and thread-safe callbacks are never starved).

Interruptions (`Task.cancel`, the deadline of a `timeout`/`move_on_after`
scope, a blocking call's own `timeout=`) are delivered with
``fiber.throw(exc)`` at the task's suspension point.  `shield()` defers them
until its block ends.  If an operation had already completed when the
interruption arrived (a lock was handed over, a queue item delivered), the
operation's result stands and the interruption is raised at the task's next
suspension point instead, so nothing is lost or done twice.

Blocking hub functions (`sleep`, `Task.join`, `wait`, the sync primitives,
channels, `wait_readable`...) must be called from a task, i.e. inside
`pycoro.run()`.  Called anywhere else they raise `RuntimeError` with a message
naming the function: the hub is never started implicitly, so a missing
`run()` is a visible bug rather than a hidden event loop.

This module owns nothing: it re-exports the public names of the package
pycoro._hub (one module per concern, see docs/hub.md), and may call only it.
"""
from ._hub._errors import (
    ALL_COMPLETED,
    FIRST_COMPLETED,
    FIRST_EXCEPTION,
    Cancelled,
    Deadlock,
    Timeout,
)
from ._hub._io import wait_readable, wait_writable
from ._hub._multi import hubs, run, spawn_on
from ._hub._run import Hub, current_task, get_hub, spawn, spawn_later
from ._hub._scopes import move_on_after, shield, timeout
from ._hub._signals import SignalReceiver, signal_receiver
from ._hub._task import Task
from ._hub._threads import max_threads, to_thread
from ._hub._timers import sleep

__all__ = [
    "ALL_COMPLETED",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "Cancelled",
    "Deadlock",
    "Hub",
    "Task",
    "Timeout",
    "current_task",
    "get_hub",
    "hubs",
    "move_on_after",
    "run",
    "shield",
    "sleep",
    "spawn",
    "spawn_later",
    "spawn_on",
    "timeout",
    "max_threads",
    "signal_receiver",
    "to_thread",
    "wait_readable",
    "wait_writable",
]
