"""pycoro.net: TCP, Unix and UDP sockets, servers and TLS as blocking-style
calls that park the calling task (no `await`, no monkey-patching).

Every call honours cancellation and pycoro.timeout()/move_on_after() scopes.
Modules, each with one job:

    _stream    Stream (a connected byte stream; TLS handshake; pipes)
    _connect   resolve() off the hub thread, connect_tcp(), connect_unix()
    _server    start_server(), start_unix_server(), Server
    _udp       open_udp(), DatagramSocket
    _socket    socket: a cooperative socket.socket subclass
"""
from ._connect import connect_tcp, connect_unix, resolve
from ._server import Server, start_server, start_unix_server
from ._socket import create_connection, socket, socketpair
from ._stream import IncompleteRead, Stream, StreamClosed
from ._udp import DatagramSocket, open_udp

__all__ = [
    "DatagramSocket", "IncompleteRead", "Server", "Stream", "StreamClosed",
    "connect_tcp", "connect_unix", "create_connection", "open_udp", "resolve",
    "socket", "socketpair", "start_server", "start_unix_server",
]
