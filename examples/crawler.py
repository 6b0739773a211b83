"""A crawler-style client with bounded concurrency, against a local server it
starts itself: 200 "pages", at most 10 requests in flight (a Semaphore),
each with its own timeout.

    python examples/crawler.py
"""
import pycoro
from pycoro import net


def page_server(stream):
    # answers "GET /n" with the links of page n: n*2 and n*2+1 (below 200)
    while True:
        line = stream.readline()
        if not line:
            return
        n = int(line.split(b"/")[1])
        links = [str(k) for k in (2 * n, 2 * n + 1) if k < 200]
        stream.sendall((" ".join(links) + "\n").encode())


def main():
    with net.start_server(page_server, "127.0.0.1", 0) as server:
        limit = pycoro.Semaphore(10)
        seen = {1}
        todo = pycoro.Queue()
        todo.put(1)

        def fetch(n):
            with limit:
                with pycoro.timeout(5):
                    with net.connect_tcp("127.0.0.1", server.port) as s:
                        s.sendall(b"GET /%d\n" % n)
                        links = s.readline().split()
            for link in map(int, links):
                if link not in seen:
                    seen.add(link)
                    todo.put(link)
            todo.task_done()

        with pycoro.TaskGroup() as tg:
            def feeder():
                while True:
                    tg.spawn(fetch, todo.get())

            f = tg.spawn(feeder)
            todo.join()
            f.cancel()
        server.cancel_connections()
        print(f"crawled {len(seen)} pages")
        return len(seen)


if __name__ == "__main__":
    pycoro.run(main)
