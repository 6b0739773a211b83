"""An echo server on pycoro.net: one task per connection, plain blocking-style calls.

    python examples/echo_server.py 8888      # then: nc 127.0.0.1 8888
"""
import sys

import pycoro
from pycoro import net


def handler(stream):
    while True:
        data = stream.recv()
        if not data:        # the client closed its side
            return
        stream.sendall(data)


def main(port):
    with net.start_server(handler, "127.0.0.1", port) as server:
        print(f"echo server on 127.0.0.1:{server.port}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    pycoro.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 8888)
