"""A minimal HTTP/1.1 server (keep-alive, Content-Length) answering "hello".

    python examples/http_hello.py 8080       # then: curl http://127.0.0.1:8080/
"""
import sys

import pycoro
from pycoro import net

BODY = b"hello, world\n"
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(BODY)) + BODY


def handler(stream):
    while True:
        request_line = stream.readline()
        if not request_line:
            return
        keep_alive = not request_line.rstrip().endswith(b"HTTP/1.0")
        length = 0
        while True:                      # headers
            line = stream.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                keep_alive = value.strip().lower() != b"close"
        if length:
            stream.readexactly(length)   # the body, ignored
        stream.sendall(RESPONSE)
        if not keep_alive:
            return


def main(port):
    with net.start_server(handler, "127.0.0.1", port) as server:
        print(f"http://127.0.0.1:{server.port}/", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    pycoro.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 8080)
