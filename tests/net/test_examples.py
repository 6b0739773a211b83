"""The examples/ programs work (their handlers driven in-process)."""
import importlib.util
import os

import pycoro
from pycoro import net

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")


def load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def serve_and(handler, client):
    def main():
        with net.start_server(handler, "127.0.0.1", 0) as srv:
            client(srv.port)
            srv.cancel_connections()
    pycoro.run(main)


def test_echo_and_http_examples(no_leaks):
    echo = load("echo_server")
    http = load("http_hello")

    def echo_client(port):
        with net.connect_tcp("127.0.0.1", port) as c:
            c.sendall(b"ping")
            assert c.readexactly(4) == b"ping"

    def http_client(port):
        with net.connect_tcp("127.0.0.1", port) as c:
            for _ in range(2):   # keep-alive: two requests on one connection
                c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert c.readline() == b"HTTP/1.1 200 OK\r\n"
                headers = {}
                while (line := c.readline()) != b"\r\n":
                    k, _, v = line.partition(b":")
                    headers[k.lower()] = v.strip()
                assert c.readexactly(int(headers[b"content-length"])) == http.BODY

    serve_and(echo.handler, echo_client)
    serve_and(http.handler, http_client)


def test_chat_example(no_leaks):
    chat = load("chat_server")

    def clients(port):
        a = net.connect_tcp("127.0.0.1", port)
        b = net.connect_tcp("127.0.0.1", port)
        with a, b:
            while len(chat.clients) < 2:
                pycoro.sleep(0.001)
            a.sendall(b"hello\n")
            assert b.readline().endswith(b"> hello\n")

    serve_and(chat.handler, clients)


def test_crawler_example(no_leaks):
    assert pycoro.run(load("crawler").main) == 199
