"""Switch round trip of pycoro.Fiber vs greenlet on the running interpreter.

One round trip = main -> worker -> main (two switches), the same ping-pong
code for both libraries in the same process.  Prints ns per round trip
(median of REPEATS runs) and the ratio pycoro / greenlet (< 1: pycoro is
faster).  Informative only: it never fails on a number.
"""
import statistics
import sys
import time

import greenlet

import pycoro

N = 100_000
REPEATS = 9


def pingpong_ns(make, getcurrent, n):
    main = getcurrent()

    def worker(x):
        sw = main.switch
        while True:
            x = sw(x)

    w = make(worker)
    sw = w.switch
    sw(0)
    t0 = time.perf_counter_ns()
    for i in range(n):
        sw(i)
    dt = time.perf_counter_ns() - t0
    w.throw()
    return dt / n


def main():
    libs = {
        "pycoro": (pycoro.Fiber, pycoro.current),
        "greenlet": (greenlet.greenlet, greenlet.getcurrent),
    }
    samples = {k: [] for k in libs}
    for name, (make, cur) in libs.items():
        pingpong_ns(make, cur, N // 10)           # warm up
    for _ in range(REPEATS):                       # interleaved runs
        for name, (make, cur) in libs.items():
            samples[name].append(pingpong_ns(make, cur, N))
    med = {k: statistics.median(v) for k, v in samples.items()}
    v = sys.version_info
    print(
        "switch round trip on CPython %d.%d.%d: pycoro %.0f ns, greenlet %s %.0f ns, "
        "ratio pycoro/greenlet = %.2f (median of %d x %d)"
        % (v.major, v.minor, v.micro, med["pycoro"], greenlet.__version__,
           med["greenlet"], med["pycoro"] / med["greenlet"], REPEATS, N)
    )


if __name__ == "__main__":
    main()
