"""Exceptions, constants and argument checks of the hub.

Owns: Cancelled, Timeout, Deadlock, the wait() constants, outside() (the
"not inside pycoro.run()" error) and check_timeout().  May call: nothing of
the hub (bottom layer).
"""
import math

ALL_COMPLETED = "ALL_COMPLETED"
FIRST_COMPLETED = "FIRST_COMPLETED"
FIRST_EXCEPTION = "FIRST_EXCEPTION"


class Cancelled(BaseException):
    """Raised inside a task at its suspension point when it is cancelled."""


class Timeout(TimeoutError):
    """A deadline passed.  `scope` is the scope (or blocking call) that fired."""

    def __init__(self, *args, scope=None):
        super().__init__(*args)
        self.scope = scope


class Deadlock(RuntimeError):
    """Every task is blocked and nothing (timer, fd, other thread) can wake one.

    `tasks` lists the blocked tasks.
    """

    def __init__(self, tasks):
        self.tasks = list(tasks)
        names = ", ".join(t.name for t in self.tasks)
        super().__init__(f"deadlock: every task is blocked forever: {names}")


def outside(what):
    """Raise the error for a blocking hub call made outside any task."""
    raise RuntimeError(
        f"pycoro.{what} must be called from a task inside pycoro.run() "
        f"(no hub is running in this fiber)"
    ) from None


def check_timeout(timeout, what="timeout"):
    """None/inf -> None; a finite number >= 0 -> float; else ValueError."""
    if timeout is None:
        return None
    try:
        if isinstance(timeout, (str, bytes, bytearray)):
            raise TypeError
        t = float(timeout)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a number or None, not {type(timeout).__name__}") from None
    if not t >= 0:  # negative or NaN
        raise ValueError(f"{what} must be >= 0 (got {timeout!r})")
    return None if t == math.inf else t
