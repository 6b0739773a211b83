"""TLS for pycoro.net streams: an ssl.SSLObject over memory BIOs, driven
by the stream's own non-blocking socket.

Owns: `TLSSocket`, which gives a Stream the socket methods it calls (recv,
recv_into, send, do_handshake, shutdown, close, fileno, setblocking) and
raises what a non-blocking SSLSocket would (BlockingIOError when the raw
socket would block; SSLWantWriteError when encrypted bytes are owed to the
peer and the socket is full), so Stream's park-and-retry loops serve TLS
unchanged.

Why not ssl.SSLSocket: the half-close.  `shutdown_write()` must send
close_notify and go on receiving.  SSLSocket.unwrap() calls SSL_shutdown a
second time straight away, which reads the socket and fails with
APPLICATION_DATA_AFTER_CLOSE_NOTIFY if the peer's data was already there
(it usually is).  Here the incoming BIO only ever holds what we fed it, and
`close_notify()` first decrypts every record in it (the stream keeps that
plaintext as received), so that second
SSL_shutdown finds nothing to read (SSLWantReadError) and receiving goes on.
End of stream from the peer is b"": its close_notify, or (as SSLSocket's
suppress_ragged_eofs) a TCP close without one.
May call: the ssl module.
"""
import ssl as _ssl

_RAW_CHUNK = 65536


class TLSSocket:
    """The TLS session of one stream (see the module doc)."""

    __slots__ = ("raw", "obj", "_in", "_out", "_owed", "_eof", "_notified")

    def __init__(self, raw, context, server_side, server_hostname):
        self.raw = raw
        self._in = _ssl.MemoryBIO()
        self._out = _ssl.MemoryBIO()
        self.obj = context.wrap_bio(self._in, self._out, server_side=server_side,
                                    server_hostname=server_hostname)
        self._owed = b""          # encrypted bytes not yet taken by the kernel
        self._eof = False         # the raw socket reached end of stream
        self._notified = False    # close_notify() was called

    def fileno(self):
        return self.raw.fileno()

    def setblocking(self, flag):
        self.raw.setblocking(flag)

    # -- moving encrypted bytes ------------------------------------------------
    def _flush(self):
        """Hand what the TLS session wrote to the kernel; SSLWantWriteError
        if the socket is full (the caller waits writable and retries)."""
        out = self._owed + self._out.read() if self._owed else self._out.read()
        while out:
            try:
                n = self.raw.send(out)
            except BlockingIOError:
                self._owed = out
                raise _ssl.SSLWantWriteError("TLS output owed, socket full") from None
            out = out[n:]
        self._owed = b""

    def _fill(self):
        """Feed the incoming BIO from the socket; BlockingIOError if nothing
        is there yet."""
        if self._eof:
            return
        data = self.raw.recv(_RAW_CHUNK)
        if data:
            self._in.write(data)
        else:
            self._eof = True
            self._in.write_eof()

    def _step(self, op, *args):
        """Run one SSLObject operation to completion or to a wait."""
        while True:
            try:
                result = op(*args)
            except _ssl.SSLWantReadError:
                self._flush()          # (a handshake message may be owed first)
                self._fill()
                continue
            self._flush()
            return result

    # -- the socket methods a Stream uses --------------------------------------
    def do_handshake(self):
        self._step(self.obj.do_handshake)

    def recv(self, n):
        try:
            return self._step(self.obj.read, n)
        except (_ssl.SSLZeroReturnError, _ssl.SSLEOFError):
            return b""   # the peer's close_notify, or a TCP close without one

    def recv_into(self, buffer, nbytes=0):
        view = memoryview(buffer).cast("B")
        try:
            return self._step(self.obj.read, nbytes or len(view), view)
        except (_ssl.SSLZeroReturnError, _ssl.SSLEOFError):
            return 0

    def send(self, data):
        """Encrypt up to 64 KiB of `data` (so what is buffered here stays
        bounded) and hand it to the kernel; the count taken.  What the
        kernel did not take yet is owed: the next call sends it first
        (SSLWantWriteError while the socket is still full, nothing taken),
        and Stream.sendall waits for it before returning."""
        if self._owed:
            self._flush()
        n = self.obj.write(data[:_RAW_CHUNK])   # a memory BIO never blocks
        try:
            self._flush()
        except _ssl.SSLWantWriteError:
            pass
        return n

    def flush(self):
        """Send what is owed; SSLWantWriteError while the socket is full."""
        if self._owed or self._out.pending:
            self._flush()

    @property
    def owes(self):
        return bool(self._owed)

    def close_notify(self):
        """Half-close, once: write close_notify; receiving goes on.  Returns
        the plaintext it had to decrypt first (see the module doc): the
        caller keeps it as received.  The alert may be left owed (the
        caller flushes)."""
        if self._notified:
            return b""
        self._notified = True
        early = bytearray()
        while True:
            try:
                chunk = self.obj.read(_RAW_CHUNK)
            except (_ssl.SSLWantReadError, _ssl.SSLZeroReturnError, _ssl.SSLEOFError):
                break
            if not chunk:
                break
            early += chunk
        try:
            self.obj.unwrap()
        except _ssl.SSLWantReadError:
            pass   # close_notify written, the peer's not seen yet: reading goes on
        except (_ssl.SSLZeroReturnError, _ssl.SSLEOFError):
            pass
        try:
            self._flush()
        except _ssl.SSLWantWriteError:
            pass
        return bytes(early)

    def shutdown(self, how):
        self.raw.shutdown(how)

    def close(self):
        self.raw.close()

    # -- what an SSLSocket user asks -----------------------------------------
    def version(self):
        return self.obj.version()

    def getpeercert(self, binary_form=False):
        return self.obj.getpeercert(binary_form)
