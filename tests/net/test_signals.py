"""Signals: signal_receiver() delivers to a task; Ctrl-C is KeyboardInterrupt
in the main task and the other tasks are cancelled cleanly."""
import os
import signal
import subprocess
import sys
import threading

import pytest

import pycoro


def test_signal_receiver_delivers_to_a_task_and_restores_handlers():
    before = signal.getsignal(signal.SIGUSR1)

    def main():
        with pycoro.signal_receiver(signal.SIGUSR1, signal.SIGUSR2) as rx:
            got = []

            def receiver():
                for signum in rx:
                    got.append(signum)
                    if len(got) == 2:
                        return

            t = pycoro.spawn(receiver)
            pycoro.sleep(0)
            os.kill(os.getpid(), signal.SIGUSR1)
            # from another thread too: the wake-up fd wakes the hub's poll
            threading.Thread(target=os.kill, args=(os.getpid(), signal.SIGUSR2)).start()
            t.join()          # only the receiver and this join are waiting: no Deadlock
            assert got == [signal.SIGUSR1, signal.SIGUSR2]
            os.kill(os.getpid(), signal.SIGUSR1)   # queued while nobody receives
            assert rx.receive() == signal.SIGUSR1

    pycoro.run(main)
    assert signal.getsignal(signal.SIGUSR1) is before


def test_a_lone_receiver_is_not_a_deadlock():
    def main():
        with pycoro.signal_receiver(signal.SIGUSR1) as rx:
            threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGUSR1)).start()
            return rx.receive()

    assert pycoro.run(main) == signal.SIGUSR1


_CTRL_C = r"""
import sys, pycoro
log = []
def other():
    print("ready", flush=True)   # main is parked by now
    try:
        pycoro.sleep(60)
    except pycoro.Cancelled:
        log.append("other cancelled")
        raise
def main():
    pycoro.spawn(other)
    t = pycoro.spawn(pycoro.to_thread, __import__("time").sleep, 0.5)
    try:
        pycoro.sleep(60)
    except KeyboardInterrupt:
        log.append("main got KeyboardInterrupt")
        raise
try:
    pycoro.run(main)
except KeyboardInterrupt:
    log.append("run raised KeyboardInterrupt")
print(log, len(pycoro.get_hub()._tasks), flush=True)
"""


def test_ctrl_c_is_keyboard_interrupt_in_the_main_task():
    p = subprocess.Popen([sys.executable, "-c", _CTRL_C], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"ready\n"
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert out.decode().strip() == (
        "['main got KeyboardInterrupt', 'other cancelled', 'run raised KeyboardInterrupt'] 0"), err.decode()


def test_receiver_outside_main_thread_is_a_clear_error():
    errors = []

    def in_thread():
        def main():
            with pytest.raises(RuntimeError, match="main thread"):
                with pycoro.signal_receiver(signal.SIGUSR1):
                    pass
        try:
            pycoro.run(main)
        except BaseException as e:  # noqa: B902 -- reported below
            errors.append(e)

    th = threading.Thread(target=in_thread)
    th.start()
    th.join()
    assert errors == []
