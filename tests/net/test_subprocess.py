"""pycoro.subprocess: pipes are Streams, exit status without blocking the hub."""
import signal
import sys

import pytest

import pycoro
from pycoro import subprocess as psp

PY = sys.executable


def test_run_captures_and_checks(no_leaks):
    def main():
        r = psp.run([PY, "-c", "import sys; d=sys.stdin.read(); print(d.upper()); sys.stderr.write('e')"],
                    input=b"abc", capture_output=True)
        assert r.returncode == 0 and r.stdout.strip() == b"ABC" and r.stderr == b"e"
        with pytest.raises(psp.CalledProcessError):
            psp.run([PY, "-c", "raise SystemExit(3)"], check=True)

    pycoro.run(main)


def test_other_tasks_run_while_a_child_runs_and_kill(no_leaks):
    def main():
        ticks = []

        def ticker():
            while True:
                ticks.append(1)
                pycoro.sleep(0.001)

        t = pycoro.spawn(ticker)
        with psp.open_process([PY, "-c", "import sys; print('ready', flush=True); sys.stdin.read()"],
                              stdin=psp.PIPE, stdout=psp.PIPE) as p:
            assert p.stdout.readline() == b"ready\n"
            n = len(ticks)
            with pytest.raises(pycoro.Timeout):
                p.wait(timeout=0.05)              # the child is blocked reading its stdin
            assert len(ticks) > n                  # the hub kept running meanwhile
            assert p.returncode is None
            p.kill()
            assert p.wait() == -signal.SIGKILL
        t.cancel()

    pycoro.run(main)


def test_streams_both_ways_and_half_close(no_leaks):
    def main():
        with psp.open_process([PY, "-c", "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())"],
                              stdin=psp.PIPE, stdout=psp.PIPE) as p:
            data = b"0123456789" * 100_000            # more than a pipe buffer both ways
            w = pycoro.spawn(lambda: (p.stdin.sendall(data), p.stdin.shutdown_write()))
            assert p.stdout.readexactly(len(data)) == data
            assert p.stdout.recv() == b""
            w.join()
        assert p.returncode == 0

    pycoro.run(main)


def test_run_timeout_kills_the_child(no_leaks):
    def main():
        with pytest.raises(pycoro.Timeout, match="did not finish"):
            psp.run([PY, "-c", "import time; time.sleep(60)"], timeout=0.2)

    pycoro.run(main)


def test_exit_status_without_pidfd(monkeypatch, no_leaks):
    # Where os.pidfd_open is missing (not Linux, or older kernels) the wait
    # runs in pycoro.to_thread; the hub keeps running meanwhile.
    monkeypatch.setattr(psp, "_pidfd_open", None)

    def main():
        with psp.open_process([PY, "-c", "import sys; sys.stdin.read(); raise SystemExit(7)"],
                              stdin=psp.PIPE) as p:
            assert p._pidfd == -1
            with pytest.raises(pycoro.Timeout):
                p.wait(timeout=0.05)
            p.stdin.close()
            assert p.wait() == 7

    pycoro.run(main)
