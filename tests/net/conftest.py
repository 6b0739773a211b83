"""Shared helpers for the pycoro.net tests: fd accounting, fd limits, echo."""
import os
import resource

import pytest

import pycoro


def open_fds():
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None


@pytest.fixture
def no_leaks():
    """Fds and hub tasks are the same after the test as before it."""
    pycoro.get_hub()  # its epoll fd and wake-up pipe exist before we count
    before = open_fds()
    yield
    hub = pycoro.get_hub()
    assert not hub._tasks, f"tasks left: {list(hub._tasks)}"
    assert hub._nfd == 0, "parked fd waiters left in the poller"
    assert open_fds() == before, "fds leaked"


@pytest.fixture
def fd_limit():
    """A callable raising the soft RLIMIT_NOFILE to at least n (skips if the
    hard limit forbids it); restores the soft limit after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    def want(n):
        if hard != resource.RLIM_INFINITY and hard < n:
            pytest.skip(f"hard RLIMIT_NOFILE is {hard}, the test needs {n}")
        if soft < n:
            resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))

    yield want
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def echo_handler(stream):
    while True:
        data = stream.recv()
        if not data:
            return
        stream.sendall(data)
