"""A line-based chat server: every line a client sends goes to every other
client.  One Channel per client carries its outgoing lines, so a slow
client only slows its own writer task, never the others.

    python examples/chat_server.py 7777      # then several: nc 127.0.0.1 7777
"""
import sys

import pycoro
from pycoro import net

clients = {}   # stream -> Channel of lines to send to it


def writer(stream, outbox):
    for line in outbox:                # until the channel is closed
        stream.sendall(line)


def handler(stream):
    outbox = pycoro.Channel(64)
    clients[stream] = outbox
    w = pycoro.spawn(writer, stream, outbox)
    name = b"%d" % stream.socket.getpeername()[1]
    try:
        while True:
            line = stream.readline()
            if not line:
                return
            for other, box in list(clients.items()):
                if other is not stream:
                    box.send(b"<" + name + b"> " + line)
    finally:
        del clients[stream]
        outbox.close()
        w.cancel()


def main(port):
    with net.start_server(handler, "127.0.0.1", port) as server:
        print(f"chat on 127.0.0.1:{server.port}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    pycoro.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 7777)
