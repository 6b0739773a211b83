"""How much `python -m pycoro bench` runs (iteration counts, worker processes
per implementation, samples per process) and its progress bar.  Owns the
environment knobs PYCORO_BENCH_SCALE, _MAX_LIVE and _REPEAT.  May call:
the standard library.
"""
import os
import sys
import time


class Sizes:
    """Sizes: `--quick` shrinks everything; PYCORO_BENCH_SCALE (a float,
    default 1) multiplies every iteration count and the calibrated burst
    length, PYCORO_BENCH_MAX_LIVE caps the live-fiber population and
    PYCORO_BENCH_REPEAT caps every count of processes and samples (tests and
    CI run tiny: with 1, no verdict can be reached and every row says so).

    The replicate of a timing row is a fresh worker process: on this kind
    of machine the process (where its stacks land, what shares its core)
    varies more than the samples inside one process, and greenlet is
    bimodal from process to process."""

    def __init__(self, quick):
        self.quick = q = quick
        self.scale = float(os.environ.get("PYCORO_BENCH_SCALE", "1"))
        rcap = int(os.environ.get("PYCORO_BENCH_REPEAT", "0") or 0)
        rep = (lambda r: max(1, min(r, rcap))) if rcap > 0 else (lambda r: r)
        # timing rows: processes per implementation, samples per process,
        # the calibrated length of one burst
        self.procs = rep(5 if q else 15)
        self.values = rep(5 if q else 7)
        self.min_ns = max(1e4, 2.5e5 * self.scale)
        self.suspended = self.n(10_000 if q else 100_000)
        self.suspended_repeat = rep(3 if q else 5)
        self.rss_n = self.n(3_000 if q else 20_000, minimum=500)
        self.rss_repeat = rep(3 if q else 5)
        top = 100_000 if q else 1_000_000
        cap = os.environ.get("PYCORO_BENCH_MAX_LIVE")
        if cap:
            top = min(top, max(1, int(cap)))
        self.live_sizes = sorted({min(top, 10 ** k) for k in range(2, 7)} | {top})
        self.live_hot = 100
        self.live_switches = self.n(10_000 if q else 20_000)
        self.live_repeat = rep(5 if q else 9)      # samples per size in one round
        self.live_rounds = rep(3)                   # fresh processes per implementation
        self.core = self.n(200_000 if q else 500_000)
        self.core_procs = rep(3 if q else 5)
        self.core_repeat = rep(5 if q else 7)
        # --plot: round trip at each depth (processes per implementation)
        self.depth_repeat = rep(3 if q else 5)
        self.depths = [1, 5, 20, 50] if q else [1, 2, 5, 10, 20, 50, 100]
        self.depth_rss_n = self.n(1_000 if q else 5_000, minimum=300)
        # compiled gevent on each implementation (fresh process per sample)
        self.gevent_repeat = rep(3 if q else 9)
        self.gevent_sleep_rounds = self.n(20 if q else 50)
        self.gevent_spawn = self.n(10_000)
        self.gevent_echo_messages = self.n(20 if q else 100)
        # pycoro.net loopback echo against other servers (fresh processes, C load generator)
        self.net_requests = self.n(20_000 if q else 100_000, minimum=200)
        self.net_repeat = rep(3 if q else 7)
        # multi-hub rows (rows_multihub.py): fresh processes per configuration
        self.mh_repeat = rep(3 if q else 7)
        self.mh_tasks = 100
        self.mh_work = self.n(6_000 if q else 60_000)     # loop iterations per fan-out task
        self.mh_round_trips = self.n(2_000 if q else 20_000)
        self.mh_items = self.n(10_000 if q else 100_000)
        self.ft_switches = self.n(20_000 if q else 200_000)
        self.net_idle = self.n(2_000 if q else 10_000, minimum=50)

    def n(self, base, minimum=10):
        return max(minimum, int(base * self.scale))


class Progress:
    """A text progress bar on stderr (a line per step when not a terminal)."""

    def __init__(self, total, enabled=True, stream=None):
        self.total = max(1, total)
        self.done = 0
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.t0 = time.monotonic()
        self.group = None

    def step(self, label):
        group = label.split(" (")[0]
        new_group, self.group = group != self.group, group
        if not self.enabled or (not self.tty and not new_group):
            return
        frac = self.done / self.total
        width = 30
        bar = "#" * int(frac * width) + "." * (width - int(frac * width))
        line = "[%s] %3d%% %5.1fs  %s" % (bar, frac * 100, time.monotonic() - self.t0, label)
        if self.tty:
            self.stream.write("\r\x1b[K" + line[:150])
        else:
            self.stream.write(line.split(" (")[0] + "\n")
        self.stream.flush()

    def advance(self, k=1):
        self.done = min(self.total, self.done + k)

    def finish(self):
        if self.enabled:
            msg = "done in %.1f s" % (time.monotonic() - self.t0)
            self.stream.write(("\r\x1b[K" if self.tty else "") + msg + "\n")
            self.stream.flush()
