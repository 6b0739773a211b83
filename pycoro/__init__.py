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

__version__ = "0.1.0"

__all__ = [
    "Fiber",
    "FiberError",
    "FiberExit",
    "current",
    "gettrace",
    "settrace",
]
