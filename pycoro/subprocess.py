"""pycoro.subprocess: child processes whose pipes are pycoro.net Streams and
whose exit status is awaited without blocking the hub.

Owns: `Process` (stdin/stdout/stderr Streams, wait(), kill(), terminate(),
send_signal(), communicate()), `open_process()` and `run()`.  Pipes are made
here (os.pipe; the child's ends are closed in the parent after the spawn) so
that the parent's ends are plain non-blocking fds.  Exit status: a pidfd
(Linux >= 5.3, os.pidfd_open) becomes readable when the child exits, the
task parks on it and then reaps with waitpid(WNOHANG); elsewhere the
blocking wait runs in pycoro.to_thread.  The fork/exec itself (Popen) runs
on the hub's thread: it is short (vfork/posix_spawn) and never waits for
the child.
May call: the standard subprocess module, pycoro._hub (_io.wait_fd,
_threads.to_thread, _scopes.shield), pycoro.net._stream.
"""
import os
import subprocess as _sp

from ._hub._errors import Timeout, check_timeout
from ._hub._io import wait_fd
from ._hub._parking import current_task
from ._hub._run import spawn
from ._hub._scopes import shield
from ._hub._threads import to_thread
from .net._stream import PipeEnd, Stream

PIPE = _sp.PIPE
DEVNULL = _sp.DEVNULL
STDOUT = _sp.STDOUT
CalledProcessError = _sp.CalledProcessError
CompletedProcess = _sp.CompletedProcess

__all__ = ["CalledProcessError", "CompletedProcess", "DEVNULL", "PIPE", "Process", "STDOUT",
           "open_process", "run"]

_pidfd_open = getattr(os, "pidfd_open", None)


class Process:
    """A running child.  `stdin`, `stdout`, `stderr` are Streams (or None)."""

    def __init__(self, popen, stdin, stdout, stderr, hub):
        self._popen = popen
        self.args = popen.args
        self.pid = popen.pid
        self.stdin = Stream(PipeEnd(stdin), hub) if stdin is not None else None
        self.stdout = Stream(PipeEnd(stdout), hub) if stdout is not None else None
        self.stderr = Stream(PipeEnd(stderr), hub) if stderr is not None else None
        self._pidfd = -1
        if _pidfd_open is not None:
            try:
                self._pidfd = _pidfd_open(popen.pid)  # the child is not reaped yet: no pid reuse
            except OSError:
                self._pidfd = -1

    def __repr__(self):
        return f"<pycoro.subprocess.Process pid={self.pid} returncode={self.returncode}>"

    @property
    def returncode(self):
        """None while running; the exit status (negative: killed by that signal)."""
        return self._popen.poll()

    def wait(self, timeout=None):
        """Park until the child exits; return its exit status.  pycoro.Timeout
        after `timeout` seconds (the child keeps running)."""
        timeout = check_timeout(timeout)
        popen = self._popen
        if popen.returncode is not None:
            return popen.returncode
        cur = current_task("subprocess.Process.wait()")
        if self._pidfd >= 0:
            while popen.poll() is None:
                try:
                    wait_fd(cur, self._pidfd, 0, timeout)
                except Timeout as e:
                    if e.scope is not None:  # an enclosing scope's deadline, not ours
                        raise
                    raise Timeout(f"process {self.pid} still running after {timeout}s") from None
            self._close_pidfd()
            return popen.returncode
        if timeout is None:
            return to_thread(popen.wait)
        try:
            return to_thread(popen.wait, timeout)
        except _sp.TimeoutExpired:
            raise Timeout(f"process {self.pid} still running after {timeout}s") from None

    def _close_pidfd(self):
        fd, self._pidfd = self._pidfd, -1
        if fd >= 0:
            os.close(fd)

    def send_signal(self, sig):
        self._popen.send_signal(sig)

    def terminate(self):
        self._popen.terminate()

    def kill(self):
        self._popen.kill()

    def communicate(self, input=None):
        """Write `input` (then close stdin), read stdout/stderr to the end
        and wait for the exit; returns (stdout bytes or None, stderr bytes or None)."""
        def read_all(stream):
            chunks = []
            while True:
                data = stream.recv()
                if not data:
                    return b"".join(chunks)
                chunks.append(data)

        readers = [spawn(read_all, s) if s is not None else None for s in (self.stdout, self.stderr)]
        try:
            if self.stdin is not None:
                try:
                    if input:
                        self.stdin.sendall(input)
                except BrokenPipeError:
                    pass  # the child does not read its input: as subprocess does
                self.stdin.close()
            out = [r.join() if r is not None else None for r in readers]
        except BaseException:
            for r in readers:
                if r is not None:
                    r.cancel()
            raise
        self.wait()
        return out[0], out[1]

    def close(self):
        """Close the parent's pipe ends (and the pidfd once reaped)."""
        for s in (self.stdin, self.stdout, self.stderr):
            if s is not None:
                s.close()
        if self._popen.returncode is not None:
            self._close_pidfd()

    def _kill_and_reap(self):
        with shield():
            if self._popen.returncode is None:
                try:
                    self.kill()
                except ProcessLookupError:
                    pass
                self.wait()
            self.close()
            self._close_pidfd()

    def __enter__(self):
        return self

    def __exit__(self, typ, exc, tb):
        if exc is not None:
            self._kill_and_reap()
        else:
            self.close()
            self.wait()
            self._close_pidfd()
        return False

    def __del__(self):
        try:
            self._close_pidfd()
        except Exception:
            pass


def _pipe_for(spec, child_fds, parent_fds, read_in_parent):
    if spec != PIPE:
        return spec, None
    r, w = os.pipe()
    child, parent = (w, r) if read_in_parent else (r, w)
    child_fds.append(child)
    parent_fds.append(parent)
    return child, parent


def open_process(args, *, stdin=None, stdout=None, stderr=None, **popen_kwargs):
    """Start a child (the arguments of subprocess.Popen; text mode is not
    supported: Streams carry bytes).  Returns a Process."""
    cur = current_task("subprocess.open_process()")
    for bad in ("text", "universal_newlines", "encoding", "errors"):
        if popen_kwargs.get(bad):
            raise ValueError(f"pycoro.subprocess: {bad}= is not supported (pipes are byte Streams)")
    child_fds, parent_fds = [], []
    try:
        c_in, p_in = _pipe_for(stdin, child_fds, parent_fds, False)
        c_out, p_out = _pipe_for(stdout, child_fds, parent_fds, True)
        c_err, p_err = _pipe_for(stderr, child_fds, parent_fds, True)
        popen = _sp.Popen(args, stdin=c_in, stdout=c_out, stderr=c_err, **popen_kwargs)
    except BaseException:
        for fd in child_fds + parent_fds:
            os.close(fd)
        raise
    for fd in child_fds:
        os.close(fd)
    return Process(popen, p_in, p_out, p_err, cur._hub)


def run(args, *, input=None, capture_output=False, check=False, timeout=None,
        stdin=None, stdout=None, stderr=None, **popen_kwargs):
    """Like subprocess.run, parking instead of blocking.  On timeout or
    cancellation the child is killed and reaped before the exception
    (pycoro.Timeout for `timeout`) propagates."""
    timeout = check_timeout(timeout)
    if capture_output:
        stdout = stderr = PIPE
    if input is not None:
        stdin = PIPE
    proc = open_process(args, stdin=stdin, stdout=stdout, stderr=stderr, **popen_kwargs)
    try:
        from ._hub._scopes import timeout as _timeout_scope
        scope = _timeout_scope(timeout)
        try:
            with scope:
                out, err = proc.communicate(input)
        except Timeout as e:
            if e.scope is scope:
                raise Timeout(f"{args!r} did not finish within {timeout}s") from None
            raise
    except BaseException:
        proc._kill_and_reap()
        raise
    proc.close()
    result = CompletedProcess(proc.args, proc.returncode, out, err)
    if check:
        result.check_returncode()
    return result
