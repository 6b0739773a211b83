"""pycoro: stackful coroutines for CPython.

`Fiber` is the primitive (greenlet's semantics under pycoro's names); the hub
(`run`, `spawn`, `sleep`, ...) is a round-robin scheduler built on it in plain
Python; `pycoro.compat.greenlet` is a drop-in greenlet API.
"""
from ._pycoro import (
    Fiber,
    FiberError,
    FiberExit,
    current,
    gettrace,
    settrace,
)

# -- hub (scheduler, sync, channels) --------------------------------------
from .hub import (
    ALL_COMPLETED,
    FIRST_COMPLETED,
    FIRST_EXCEPTION,
    Cancelled,
    Deadlock,
    Hub,
    Task,
    Timeout,
    current_task,
    get_hub,
    hubs,
    move_on_after,
    run,
    shield,
    sleep,
    spawn,
    spawn_later,
    spawn_on,
    timeout,
    max_threads,
    signal_receiver,
    to_thread,
    wait_readable,
    wait_writable,
)
from .group import TaskGroup, wait
from .sync import BoundedSemaphore, Condition, Event, Lock, Queue, RLock, Semaphore
from .channel import Channel, ChannelClosed, select
# -- end hub ----------------------------------------------------------------

__version__ = "0.1.0"


def get_include():
    """The folder holding pycoro.h, the C API header for extension modules."""
    import os
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "include")


__all__ = [
    "Fiber",
    "FiberError",
    "FiberExit",
    "current",
    "get_include",
    "gettrace",
    "settrace",
    # hub
    "ALL_COMPLETED", "FIRST_COMPLETED", "FIRST_EXCEPTION",
    "BoundedSemaphore", "Cancelled", "Channel", "ChannelClosed", "Condition",
    "Deadlock", "Event", "Hub", "Lock", "Queue", "RLock", "Semaphore", "Task",
    "TaskGroup", "Timeout", "current_task", "get_hub", "hubs", "move_on_after", "run",
    "select", "shield", "sleep", "spawn", "spawn_later", "spawn_on", "timeout", "max_threads", "signal_receiver", "to_thread", "wait",
    "wait_readable", "wait_writable",
]
