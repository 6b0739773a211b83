"""The loopback echo benchmark of `python -m pycoro bench` (issue 18).

Owns: the load generator (C with epoll, compiled by the bench with the
system's cc, cached by source hash, so the client side costs the same for
every server), the echo servers (pycoro.net, asyncio streams, gevent's
StreamServer, uvloop and trio when installed), each run in a fresh process
by `python -m pycoro.bench.net serve IMPL`, and `sample()` / `measure()`:
one server process, one load-generator run, nanoseconds per request (and
the server's CPU time per request); `compare()` (python -m pycoro.bench.net
compare ...): a table of them across implementations, paired per round.
May call: the standard library; pycoro.net, asyncio, gevent, uvloop, trio in
the server processes only.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

LOADGEN_C = r"""
/* echo load generator: CONNS connections, each with one SIZE-byte message in
   flight; counts round trips until TOTAL are done (the first WARM untimed). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

static long long now_ns(void) {
    struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 6) { fprintf(stderr, "usage: port conns size total warm\n"); return 2; }
    int port = atoi(argv[1]), conns = atoi(argv[2]);
    long size = atol(argv[3]), total = atol(argv[4]), warm = atol(argv[5]);
    char *msg = malloc(size), *buf = malloc(size);
    long *got = calloc(conns, sizeof(long));
    int *fds = calloc(conns, sizeof(int));
    memset(msg, 'e', size);
    int ep = epoll_create1(0);
    struct sockaddr_in a; memset(&a, 0, sizeof a);
    a.sin_family = AF_INET; a.sin_port = htons(port); a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < conns; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { perror("connect"); return 1; }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(fd, F_SETFL, O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        fds[i] = fd;
    }
    long started = 0, done = 0;
    long long t0 = 0;
    for (int i = 0; i < conns && started < total; i++, started++)
        if (write(fds[i], msg, size) != size) { perror("write"); return 1; }
    if (warm == 0) t0 = now_ns();
    struct epoll_event evs[256];
    while (done < total) {
        int n = epoll_wait(ep, evs, 256, 10000);
        if (n <= 0) { fprintf(stderr, "epoll_wait: %s\n", n ? strerror(errno) : "stalled 10 s"); return 1; }
        for (int k = 0; k < n; k++) {
            int i = evs[k].data.u32;
            ssize_t r = read(fds[i], buf, size - got[i]);
            if (r == 0) { fprintf(stderr, "server closed a connection\n"); return 1; }
            if (r < 0) { if (errno == EAGAIN) continue; perror("read"); return 1; }
            got[i] += r;
            if (got[i] < size) continue;
            got[i] = 0;
            if (++done == warm) t0 = now_ns();
            if (started < total) {
                started++;
                if (write(fds[i], msg, size) != size) { perror("write"); return 1; }
            }
        }
    }
    long long t1 = now_ns();
    printf("%ld %lld\n", total - warm, t1 - t0);
    return 0;
}
"""

IMPLS = ("pycoro", "asyncio", "gevent", "uvloop", "trio")


def missing(impl):
    """None if `impl` can run here, else why not."""
    mod = {"pycoro": "pycoro.net", "asyncio": "asyncio", "gevent": "gevent.server",
           "uvloop": "uvloop", "trio": "trio"}[impl]
    try:
        __import__(mod)
    except ImportError as e:
        return f"{impl} is not installed ({e})"
    return None


def loadgen_path():
    """Compile the load generator once per source text; its path (or raise)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise RuntimeError("the echo benchmark needs a C compiler (cc) to build its load generator")
    digest = hashlib.sha256(LOADGEN_C.encode()).hexdigest()[:16]
    d = os.path.join(tempfile.gettempdir(), f"pycoro-bench-{os.getuid()}")
    os.makedirs(d, exist_ok=True)
    exe = os.path.join(d, f"echo-loadgen-{digest}")
    if not os.path.exists(exe):
        src = exe + ".c"
        with open(src, "w") as f:
            f.write(LOADGEN_C)
        tmp = exe + f".tmp{os.getpid()}"
        subprocess.run([cc, "-O2", "-o", tmp, src], check=True, capture_output=True)
        os.replace(tmp, exe)
    return exe


def sample(impl, size, total, conns=100):
    """Start a fresh `impl` echo server, drive it with the load generator;
    nanoseconds per request (lower is better)."""
    return measure(impl, size, total, conns)["ns"]


def _cpu_seconds(pid):
    """User + system CPU time of process `pid` (Linux /proc), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(impl, size, total, conns=100):
    """One fresh `impl` server driven by the load generator: {"ns": wall
    nanoseconds per request, "cpu_ns": the server's CPU nanoseconds per
    request (None where /proc is missing)}.  On a shared machine the CPU
    figure moves far less than the wall-clock one: it does not count the
    time the server waited for a core."""
    exe = loadgen_path()
    server = subprocess.Popen([sys.executable, "-m", "pycoro.bench.net", "serve", impl],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = server.stdout.readline()
        if not line:
            raise RuntimeError(f"{impl} echo server did not start: {server.stderr.read().decode()[-500:]}")
        port = int(line)
        warm = max(1, total // 10)
        cpu0 = _cpu_seconds(server.pid)
        r = subprocess.run([exe, str(port), str(conns), str(size), str(total + warm), str(warm)],
                           capture_output=True, text=True, timeout=300)
        cpu1 = _cpu_seconds(server.pid)
        if r.returncode != 0:
            raise RuntimeError(f"load generator against {impl}: {r.stderr.strip()[-300:]}")
        n, ns = map(int, r.stdout.split())
        cpu = None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) * 1e9 / (total + warm)
        return {"ns": ns / n, "cpu_ns": cpu}
    finally:
        server.kill()
        server.wait()
        server.stdout.close()
        server.stderr.close()


def rss_idle(impl, conns):
    """KiB of server RSS growth with `conns` idle connections (fresh server)."""
    import resource
    import socket
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = conns + 256
    if soft != resource.RLIM_INFINITY and soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            raise RuntimeError(f"{conns} idle connections need {need} fds; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))  # inherited by the server
    server = subprocess.Popen([sys.executable, "-m", "pycoro.bench.net", "serve", impl],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    socks = []
    try:
        port = int(server.stdout.readline())

        def rss():
            with open(f"/proc/{server.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        # one connection echoed first, so the server's code paths are warm
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"w")
        s.recv(1)
        socks.append(s)
        before = rss()
        for _ in range(conns):
            c = socket.create_connection(("127.0.0.1", port))
            socks.append(c)
        for c in socks[1:]:
            c.sendall(b"x")
        for c in socks[1:]:
            c.recv(1)
        return (rss() - before) * 1024 / conns
    finally:
        for s in socks:
            s.close()
        server.kill()
        server.wait()
        server.stdout.close()
        server.stderr.close()


# ---------------------------------------------------------------- servers

def _announce(port):
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()


def serve_pycoro():
    import pycoro
    from pycoro import net

    def handler(stream):
        recv, send = stream.recv, stream.sendall
        while True:
            data = recv(65536)
            if not data:
                return
            send(data)

    def main():
        srv = net.start_server(handler, "127.0.0.1", 0)
        _announce(srv.port)
        srv.serve_forever()

    pycoro.run(main)


def _serve_asyncio(loop_factory=None):
    import asyncio

    async def handler(reader, writer):
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        writer.close()

    async def main():
        srv = await asyncio.start_server(handler, "127.0.0.1", 0)
        _announce(srv.sockets[0].getsockname()[1])
        await srv.serve_forever()

    if loop_factory is None:
        asyncio.run(main())
    else:
        loop_factory(main())


def serve_asyncio():
    _serve_asyncio()


def serve_uvloop():
    import uvloop
    _serve_asyncio(uvloop.run)


def serve_gevent():
    from gevent.server import StreamServer

    def handler(sock, addr):
        while True:
            data = sock.recv(65536)
            if not data:
                return
            sock.sendall(data)

    srv = StreamServer(("127.0.0.1", 0), handler)
    srv.init_socket()
    _announce(srv.server_port)
    srv.serve_forever()


def serve_trio():
    import trio

    async def handler(stream):
        async for data in stream:
            await stream.send_all(data)

    async def main():
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trio.serve_tcp, handler, 0)
            _announce(listeners[0].socket.getsockname()[1])

    trio.run(main)


def compare(impls, sizes, reps, total, out=sys.stdout):
    """Every impl at every size, `reps` rounds (order reversed every other
    round), a fresh server per sample; prints req/s and server CPU per
    request with their spread, and pycoro's per-round (paired) ratios."""
    import statistics
    impls = ["pycoro"] + [i for i in impls if i != "pycoro"]
    res = {}
    for r in range(reps):
        for size in sizes:
            for impl in (impls if r % 2 == 0 else impls[::-1]):
                res.setdefault((impl, size), []).append(measure(impl, size, total))
    med = statistics.median
    for size in sizes:
        base = res[("pycoro", size)]
        for impl in impls:
            v = res[(impl, size)]
            rps = [1e9 / x["ns"] for x in v]
            line = "%5d B %-8s req/s %7.0f [%.0f..%.0f]" % (size, impl, med(rps), min(rps), max(rps))
            if impl != "pycoro":
                rr = sorted(x["ns"] / b["ns"] for x, b in zip(v, base))
                line += "  pycoro/it req/s (paired) %.2f [%.2f..%.2f]" % (med(rr), rr[0], rr[-1])
            if all(x["cpu_ns"] for x in v + base):
                cpu = [x["cpu_ns"] / 1e3 for x in v]
                line += "  server CPU us/req %.1f [%.1f..%.1f]" % (med(cpu), min(cpu), max(cpu))
                if impl != "pycoro":
                    cr = sorted(x["cpu_ns"] / b["cpu_ns"] for x, b in zip(v, base))
                    line += "  it/pycoro CPU %.2f [%.2f..%.2f]" % (med(cr), cr[0], cr[-1])
            out.write(line + "\n")
            out.flush()


_USAGE = ("usage: python -m pycoro.bench.net serve {%s}\n"
          "       python -m pycoro.bench.net compare IMPL,IMPL... [SIZES=64,4096] [REPS=5] [REQUESTS=30000]"
          % ",".join(IMPLS))

if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) == 2 and a[0] == "serve" and a[1] in IMPLS:
        globals()["serve_" + a[1]]()
    elif 2 <= len(a) <= 5 and a[0] == "compare" and set(a[1].split(",")) <= set(IMPLS):
        why = [m for m in map(missing, ["pycoro"] + a[1].split(",")) if m]
        if why:
            raise SystemExit("; ".join(why))
        compare(a[1].split(","), [int(x) for x in (a[2] if len(a) > 2 else "64,4096").split(",")],
                int(a[3]) if len(a) > 3 else 5, int(a[4]) if len(a) > 4 else 30000)
    else:
        raise SystemExit(_USAGE)
