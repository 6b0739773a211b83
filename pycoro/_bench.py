"""`python -m pycoro bench`: pycoro against greenlet, in one run.

Every timing measure runs both implementations in this process, sample by
sample, alternating which goes first; the table shows the medians and, as
the ratio, the median of the per-round ratios (each round's two samples ran
back to back); every memory
measure runs each implementation in a fresh interpreter, alternating too.
greenlet and matplotlib are imported only here, only when needed.

Sizes: `--quick` shrinks everything to finish in well under 30 s;
PYCORO_BENCH_SCALE (a float, default 1) multiplies every iteration count and
PYCORO_BENCH_MAX_LIVE caps the live-fiber population and PYCORO_BENCH_REPEAT
every repeat count (tests and CI run tiny).
PYCORO_BENCH_SUBJECT=greenlet puts greenlet in pycoro's column too: a
self-test of the harness (every ratio should come out near 1).
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

from . import _bench_work as work

SUBJECT_DEFAULT = "pycoro"
BASELINE = "greenlet"


# ---------------------------------------------------------------- sizes

class Sizes:
    """Iteration counts.  A timing sample is the fastest of a few short
    bursts (see _bench_work.BURSTS), and samples are repeated many times: on
    a shared machine a long sample always contains preemptions."""

    def __init__(self, quick):
        self.quick = quick
        self.scale = float(os.environ.get("PYCORO_BENCH_SCALE", "1"))
        q = quick
        # PYCORO_BENCH_REPEAT caps every repeat count (tests: 1).
        rcap = int(os.environ.get("PYCORO_BENCH_REPEAT", "0") or 0)
        rep = (lambda r: max(1, min(r, rcap))) if rcap > 0 else (lambda r: r)
        self.repeat = rep(7 if q else 25)
        self.roundtrip = self.n(20_000 if q else 20_000)
        self.create = self.n(1_000 if q else 2_000)
        self.suspended = self.n(10_000 if q else 100_000)
        self.suspended_repeat = rep(3 if q else 5)
        self.reentry = self.n(10_000 if q else 10_000)
        self.rss_n = self.n(3_000 if q else 20_000, minimum=500)
        self.rss_repeat = rep(3 if q else 5)
        top = 100_000 if q else 1_000_000
        cap = os.environ.get("PYCORO_BENCH_MAX_LIVE")
        if cap:
            top = min(top, max(1, int(cap)))
        self.live_sizes = sorted({min(top, 10 ** k) for k in range(2, 7)} | {top})
        self.live_hot = 100
        self.live_switches = self.n(10_000 if q else 20_000)
        self.live_repeat = rep(5 if q else 15)
        self.core = self.n(200_000 if q else 500_000)
        self.depth_repeat = rep(3 if q else 9)
        self.depths = [1, 5, 20, 50] if q else [1, 2, 5, 10, 20, 50, 100]
        self.depth_roundtrip = self.n(10_000 if q else 20_000)
        self.depth_rss_n = self.n(1_000 if q else 5_000, minimum=300)
        # compiled gevent on each implementation (fresh process per sample)
        self.gevent_repeat = rep(3 if q else 9)
        self.gevent_sleep_rounds = self.n(20 if q else 50)
        self.gevent_spawn = self.n(10_000)
        self.gevent_echo_messages = self.n(20 if q else 100)
        # pycoro.net loopback echo against other servers (fresh processes, C load generator)
        self.net_requests = self.n(20_000 if q else 100_000, minimum=200)
        self.net_repeat = rep(3 if q else 7)
        self.net_idle = self.n(2_000 if q else 10_000, minimum=50)

    def n(self, base, minimum=10):
        return max(minimum, int(base * self.scale))


# ---------------------------------------------------------------- progress

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


# ---------------------------------------------------------------- running

def _median(xs):
    return statistics.median(xs) if xs else None


def _run_worker(cmd, **kwargs):
    """Run one _bench_work worker in a fresh interpreter; its result dict."""
    proc = subprocess.run(
        [sys.executable, "-m", "pycoro._bench_work", cmd, json.dumps(kwargs)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-6:]
        raise RuntimeError("worker %s %s exited with %d: %s"
                           % (cmd, kwargs.get("impl_name", ""), proc.returncode, " | ".join(tail)))
    return json.loads(proc.stdout.strip().splitlines()[-1])


class Ctx:
    def __init__(self, subject, baseline, sizes, progress):
        self.subject = subject          # Impl
        self.baseline = baseline        # Impl or None
        self.sizes = sizes
        self.progress = progress

    def impls(self):
        return [i for i in (self.subject, self.baseline) if i is not None]

    def interleaved(self, repeat, label, fn):
        """fn(impl) -> sample; `repeat` rounds over both implementations,
        alternating which goes first.  {impl name: [samples]}."""
        out = {i.name + ("#s" if i is self.subject else "#b"): [] for i in self.impls()}
        impls = self.impls()
        for r in range(repeat):
            order = impls if r % 2 == 0 else impls[::-1]
            for impl in order:
                self.progress.step("%s (%s, %d/%d)" % (label, impl.name, r + 1, repeat))
                key = impl.name + ("#s" if impl is self.subject else "#b")
                out[key].append(fn(impl))
                self.progress.advance()
        s = out[self.subject.name + "#s"]
        b = out[self.baseline.name + "#b"] if self.baseline else None
        return s, b


class Measure:
    """One row of the table."""

    def __init__(self, id, title, unit, target, kind, steps, fn):
        self.id = id
        self.title = title
        self.unit = unit
        self.target = target    # number or None
        self.kind = kind        # "ratio" (subject/baseline <= target), "value" (<= target), "works"
        self.steps = steps      # progress steps, from sizes
        self.fn = fn            # fn(ctx) -> dict(subject=, baseline=, value=?, detail=, title=?)


def _ratio_row(s, b, **detail):
    """Medians of both, and the ratio as the median of the per-round ratios:
    the two samples of a round ran back to back, so they saw the same
    machine (on a shared VM the speed of a core changes by 2x from one
    millisecond to the next, and a ratio of medians would mix regimes)."""
    sm, bm = _median(s), _median(b) if b is not None else None
    row = {"subject": sm, "baseline": bm, "detail": dict(detail, subject_samples=s, baseline_samples=b)}
    if b and all(x > 0 for x in b):
        row["ratio"] = _median([x / y for x, y in zip(s, b)])
    return row


def m_roundtrip(ctx):
    z = ctx.sizes
    s, b = ctx.interleaved(z.repeat, "switch round trip", lambda i: work.roundtrip_ns(i, z.roundtrip))
    gen = [work.roundtrip_generator_ns(z.roundtrip) for _ in range(3)]
    return _ratio_row(s, b, n=z.roundtrip, generator_send_ns=_median(gen))


# Allocation-bound measures run each sample in a fresh interpreter: once a
# process has used pycoro, its data-stack chunk cache (csrc/binding/chunks.c)
# would serve greenlet's chunk allocations too and flatter the baseline.

def m_create(ctx):
    z = ctx.sizes
    s, b = ctx.interleaved(z.repeat, "create+run+free (subprocess)",
                           lambda i: _run_worker("create", impl_name=i.name, n=z.create)["ns"])
    gen = [work.create_run_generator_ns(z.create) for _ in range(3)]
    return _ratio_row(s, b, n=z.create, generator_ns=_median(gen))


def m_suspended(ctx):
    z = ctx.sizes
    parts = {}

    def one(impl):
        r = _run_worker("suspended", impl_name=impl.name, n=z.suspended)
        c, f = r["create"], r["free"]
        parts.setdefault(impl.name, []).append((c / 1e6, f / 1e6))
        return (c + f) / 1e6

    s, b = ctx.interleaved(z.suspended_repeat, "%d fibers at depth 5" % z.suspended, one)
    gen = [sum(work.suspended_generators(z.suspended)) / 1e6 for _ in range(1)]
    row = _ratio_row(s, b, n=z.suspended, depth=5, generator_ms=_median(gen),
                     create_free_ms={k: [list(p) for p in v] for k, v in parts.items()})
    row["title"] = "create %s fibers suspended at depth 5, free them" % format(z.suspended, ",")
    return row


def m_rss(ctx):
    z = ctx.sizes
    saved = {}

    def one(impl):
        r = _run_worker("rss", impl_name=impl.name, n=z.rss_n, depth=5)
        saved[impl.name] = r["stack_saved"]
        return r["rss_per_fiber"]

    s, b = ctx.interleaved(z.rss_repeat, "RSS per fiber (subprocess)", one)
    return _ratio_row(s, b, n=z.rss_n, depth=5, stack_saved=saved)


def m_reentry(ctx):
    z = ctx.sizes
    saved = {}

    def one(impl):
        ns, st = work.reentry_ns(impl, z.reentry)
        saved[impl.name] = st
        return ns

    s, b = ctx.interleaved(z.repeat, "switch inside sorted(key=)", one)
    return _ratio_row(s, b, n=z.reentry, stack_saved=saved)


def _live_result(ctx):
    """Both implementations' live-fiber runs (one subprocess each), shared by
    the flatness row and the 'N alive' row."""
    if getattr(ctx, "_live", None) is None:
        z = ctx.sizes
        ctx._live = {}
        for role, impl in (("s", ctx.subject), ("b", ctx.baseline)):
            if impl is None:
                continue
            ctx.progress.step("%s live fibers up to %s (subprocess)" % (impl.name, format(z.live_sizes[-1], ",")))
            try:
                ctx._live[role] = _run_worker(
                    "live", impl_name=impl.name, sizes=z.live_sizes, hot=z.live_hot,
                    switches=z.live_switches, repeat=z.live_repeat)
            except Exception as e:  # reported per row
                ctx._live[role] = e
            ctx.progress.advance()
    return ctx._live


def _flatness(r):
    ns = [p["ns"] for p in r["points"]]
    return max(ns) / min(ns)


def m_live_flat(ctx):
    live = _live_result(ctx)
    s = live["s"]
    if isinstance(s, Exception):
        raise s
    b = live.get("b")
    detail = {"sizes": ctx.sizes.live_sizes, "hot": ctx.sizes.live_hot,
              "subject_points": s["points"]}
    row = {"subject": _flatness(s), "baseline": None, "detail": detail}
    if isinstance(b, dict):
        row["baseline"] = _flatness(b)
        detail["baseline_points"] = b["points"]
    elif b is not None:
        detail["baseline_error"] = str(b)
    row["value"] = row["subject"]
    row["title"] = "switch cost flat in live fibers (10^2..%s): max/min" % _pow10(ctx.sizes.live_sizes[-1])
    return row


def m_live_many(ctx):
    live = _live_result(ctx)
    s = live["s"]
    if isinstance(s, Exception):
        raise s
    b = live.get("b")
    mb = s["rss_delta"] / 2 ** 20
    row = {"subject": mb, "baseline": None, "value": mb,
           "detail": {"alive": s["alive"], "rss_total_mb": s["rss_total"] / 2 ** 20,
                      "finish_s": s["finish_s"]}}
    if isinstance(b, dict):
        row["baseline"] = b["rss_delta"] / 2 ** 20
    elif b is not None:
        row["detail"]["baseline_error"] = str(b)
    row["works"] = True
    row["title"] = "%s fibers alive at once (RSS, MiB)" % format(s["alive"], ",")
    return row


def _pow10(n):
    k = len(str(n)) - 1
    return "10^%d" % k if n == 10 ** k else format(n, ",")


def m_core(ctx):
    z = ctx.sizes
    ctx.progress.step("raw C core switch (cffi, subprocess)")
    r = _run_worker("core", n=z.core, repeat=z.repeat)
    ctx.progress.advance()
    if "skipped" in r:
        return {"skipped": r["skipped"]}
    return {"subject": r["ns"], "baseline": None, "value": r["ns"],
            "detail": {"n": z.core, "samples": r["samples"], "variants": r.get("variants", {}),
                       "variant_samples": r.get("variant_samples", {})}}


def _gevent_row(ctx, label, worker, **kwargs):
    from . import _bench_gevent
    why = _bench_gevent.gevent_available()
    if why:
        return {"skipped": why}
    z = ctx.sizes
    s, b = ctx.interleaved(z.gevent_repeat, label + " (subprocess)",
                           lambda i: _run_worker(worker, impl_name=i.name, **kwargs)["ns"])
    return _ratio_row(s, b, **kwargs)


def m_gevent_sleep0(ctx):
    return _gevent_row(ctx, "gevent.sleep(0), 1,000 greenlets", "gevent_sleep0",
                       greenlets=1000, rounds=ctx.sizes.gevent_sleep_rounds)


def m_gevent_spawn_join(ctx):
    n = ctx.sizes.gevent_spawn
    row = _gevent_row(ctx, "gevent spawn+joinall", "gevent_spawn_join", n=n)
    row.setdefault("title", "gevent: spawn + joinall %s trivial greenlets" % format(n, ","))
    return row


def m_gevent_echo(ctx):
    return _gevent_row(ctx, "gevent loopback echo, 100 connections", "gevent_echo",
                       connections=100, messages=ctx.sizes.gevent_echo_messages)


def _net_echo_row(ctx, other, size):
    from . import _bench_net
    why = _bench_net.missing(other) or _bench_net.missing("pycoro")
    if why:
        return {"skipped": why}
    z = ctx.sizes
    s, b = [], []
    for r in range(z.net_repeat):
        order = ("pycoro", other) if r % 2 == 0 else (other, "pycoro")
        for impl in order:
            ctx.progress.step("echo %d B: %s (%d/%d)" % (size, impl, r + 1, z.net_repeat))
            (s if impl == "pycoro" else b).append(_bench_net.sample(impl, size, z.net_requests))
            ctx.progress.advance()
    row = _ratio_row(s, b, size=size, connections=100, requests=z.net_requests, other=other,
                     baseline_name=other)   # the table names this row's baseline
    row["detail"]["requests_per_second"] = {"pycoro": 1e9 / row["subject"], other: 1e9 / row["baseline"]}
    return row


def _net_echo_measure(other, size, target):
    label = {"asyncio": "asyncio streams", "gevent": "gevent StreamServer",
             "uvloop": "asyncio+uvloop", "trio": "trio"}[other]
    return Measure("net_echo_%s_%s" % ("64" if size == 64 else "4k", other),
                   "net: echo 100 conns %s, per request, vs %s" % ("64 B" if size == 64 else "4 KiB", label),
                   "ns", target, "ratio", 2, lambda ctx: _net_echo_row(ctx, other, size))


def m_net_idle(ctx):
    from . import _bench_net
    z = ctx.sizes
    out = {}
    for impl in _bench_net.IMPLS:
        if _bench_net.missing(impl):
            continue
        ctx.progress.step("idle connections: %s" % impl)
        out[impl] = _bench_net.rss_idle(impl, z.net_idle)
        ctx.progress.advance()
    return {"subject": out["pycoro"], "baseline": None, "value": out["pycoro"], "works": True,
            "title": "net: server RSS per idle connection (%s connections)" % format(z.net_idle, ","),
            "detail": {"bytes_per_connection": out, "connections": z.net_idle}}


def measures(sizes):
    z = sizes
    return [
        Measure("roundtrip", "switch round trip main -> fiber -> main", "ns", 0.25, "ratio",
                2 * z.repeat, m_roundtrip),
        Measure("create_run_free", "create + start + run to end + free", "ns", 0.05, "ratio",
                2 * z.repeat, m_create),
        Measure("suspended_100k", "create 100,000 fibers suspended at depth 5, free them", "ms",
                0.30, "ratio", 2 * z.suspended_repeat, m_suspended),
        Measure("rss_depth5", "RSS per suspended fiber at Python depth 5", "B", 0.50, "ratio",
                2 * z.rss_repeat, m_rss),
        Measure("switch_reentry", "switch with a C re-entry (inside sorted(key=...))", "ns", 0.40,
                "ratio", 2 * z.repeat, m_reentry),
        Measure("live_flat", "switch cost flat in live fibers (10^2..10^6): max/min", "x", 1.5,
                "value", 2, m_live_flat),
        Measure("live_1m", "1,000,000 fibers alive at once (RSS, MiB)", "MiB", None, "works", 0,
                m_live_many),
        Measure("core_switch", "raw C core switch, no Python (cffi)", "ns", 10.0, "value", 1,
                m_core),
        Measure("gevent_sleep0", "gevent: sleep(0) with 1,000 greenlets, per sleep", "ns", 0.7,
                "ratio", 2 * z.gevent_repeat, m_gevent_sleep0),
        Measure("gevent_spawn_join", "gevent: spawn + joinall 10,000 trivial greenlets", "ns",
                0.5, "ratio", 2 * z.gevent_repeat, m_gevent_spawn_join),
        Measure("gevent_echo", "gevent: loopback echo, 100 connections, per message", "ns",
                1.0, "ratio", 2 * z.gevent_repeat, m_gevent_echo),
        # issue 18's goals: at least asyncio's and gevent's requests/s (ns ratio <= 1),
        # at least 0.8x uvloop's (ns ratio <= 1.25)
        _net_echo_measure("asyncio", 64, 1.0),
        _net_echo_measure("gevent", 64, 1.0),
        _net_echo_measure("uvloop", 64, 1.25),
        _net_echo_measure("trio", 64, 1.0),
        _net_echo_measure("asyncio", 4096, 1.0),
        _net_echo_measure("gevent", 4096, 1.0),
        _net_echo_measure("uvloop", 4096, 1.25),
        _net_echo_measure("trio", 4096, 1.0),
        Measure("net_idle", "net: server RSS per idle connection", "B", None, "works", 3, m_net_idle),
    ]


def run_measure(m, ctx):
    row = {"id": m.id, "title": m.title, "unit": m.unit, "kind": m.kind, "target": m.target,
           "subject": None, "baseline": None, "ratio": None, "value": None,
           "status": None, "detail": {}, "error": None}
    t0 = time.monotonic()
    try:
        r = m.fn(ctx)
    except Exception as e:
        row["status"] = "error"
        row["error"] = "%s: %s" % (type(e).__name__, e)
        row["seconds"] = time.monotonic() - t0
        return row
    row["seconds"] = time.monotonic() - t0
    if "skipped" in r:
        row["status"] = "skipped"
        row["error"] = r["skipped"]
        return row
    row["title"] = r.get("title", m.title)
    row["subject"] = r.get("subject")
    row["baseline"] = r.get("baseline")
    row["detail"] = r.get("detail", {})
    if m.kind != "value" and row["subject"] is not None and row["baseline"]:
        row["ratio"] = r.get("ratio", row["subject"] / row["baseline"])
    if m.kind == "ratio":
        row["value"] = row["ratio"]
        if ctx.baseline is None:
            row["status"] = "no baseline"
        elif row["ratio"] is None:  # e.g. an RSS delta below one page
            row["status"] = "inconclusive"
        else:
            row["status"] = "pass" if row["ratio"] <= m.target else "fail"
    elif m.kind == "value":
        row["value"] = r["value"]
        row["status"] = "pass" if r["value"] <= m.target else "fail"
    else:  # works
        row["value"] = r.get("value")
        row["status"] = "pass" if r.get("works") else "fail"
    return row


# ---------------------------------------------------------------- plot data

def depth_curves(ctx):
    """Switch round trip and RSS per fiber against Python depth, both impls."""
    z = ctx.sizes
    out = {"depths": z.depths, "names": {"subject": ctx.subject.name},
           "roundtrip_ns": {"subject": []}, "rss_per_fiber": {"subject": []}}
    if ctx.baseline is not None:
        out["names"]["baseline"] = ctx.baseline.name
        out["roundtrip_ns"]["baseline"] = []
        out["rss_per_fiber"]["baseline"] = []
    for d in z.depths:
        s, b = ctx.interleaved(z.depth_repeat, "plot: round trip at depth %d" % d,
                               lambda i: work.roundtrip_ns(i, z.depth_roundtrip, depth=d))
        out["roundtrip_ns"]["subject"].append(_median(s))
        if b is not None:
            out["roundtrip_ns"]["baseline"].append(_median(b))
        s, b = ctx.interleaved(1, "plot: RSS per fiber at depth %d" % d,
                               lambda i: _run_worker("rss", impl_name=i.name, n=z.depth_rss_n,
                                                     depth=d)["rss_per_fiber"])
        out["rss_per_fiber"]["subject"].append(_median(s))
        if b is not None:
            out["rss_per_fiber"]["baseline"].append(_median(b))
    return out


# ---------------------------------------------------------------- output

def machine_info():
    cpu = None
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "cpu model", "hardware")):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "system": platform.platform(),
        "python": sys.version.replace("\n", " "),
        "implementation": platform.python_implementation(),
        "loadavg": _loadavg(),
    }


def _loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _fmt(v, unit):
    if v is None:
        return "-"
    if unit == "B":
        return "%.0f B" % v
    if unit == "x":
        return "%.2fx" % v
    if unit == "MiB":
        return "%.0f MiB" % v
    if unit == "ms":
        return "%.1f ms" % v
    if v >= 10000:
        return "%.1f us" % (v / 1000)
    return "%.1f ns" % v


def _target_text(row):
    t = row["target"]
    if row["kind"] == "ratio":
        return "<= %.2f" % t
    if row["kind"] == "value":
        return "<= %g%s" % (t, "x" if row["unit"] == "x" else " " + row["unit"])
    return "works"


def format_table(report):
    subj, base = report["subject"], report["baseline"] or "greenlet"
    named = any(r["detail"].get("baseline_name") for r in report["measures"])
    head = ["measure", subj + " (median)", base + (" or as named (median)" if named else " (median)"),
            "ratio", "target", "result"]
    rows = []
    for r in report["measures"]:
        ratio = "-" if r["ratio"] is None else "%.3f" % r["ratio"]
        status = r["status"].upper() if r["status"] in ("pass", "fail", "error") else r["status"]
        peer = r["detail"].get("baseline_name")   # a row whose baseline is not `base` (net rows)
        bcell = _fmt(r["baseline"], r["unit"]) + (" (%s)" % peer if peer and r["baseline"] is not None else "")
        rows.append([r["title"], _fmt(r["subject"], r["unit"]), bcell, ratio, _target_text(r), status])
    widths = [max(len(str(x[i])) for x in rows + [head]) for i in range(len(head))]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    notes = []
    for r in report["measures"]:
        if r["error"]:
            notes.append("%s: %s: %s" % (r["id"], r["status"], r["error"]))
    return "\n".join(out), notes


def print_report(report, stream):
    m = report["machine"]
    stream.write("pycoro bench%s: %s vs %s\n" % (" --quick" if report["quick"] else "",
                                                 report["subject"], report["baseline"] or "(no baseline)"))
    stream.write("CPU: %s (%s logical cores), Python %s\n" % (m["cpu"], m["cores"], m["python"]))
    if m.get("loadavg"):
        stream.write("load average (1 min) before/after: %s / %s on %s cores%s\n" % (
            m["loadavg_before"][0] if m.get("loadavg_before") else "?", m["loadavg"][0], m["cores"],
            "  (busy machine: expect noise)" if m["loadavg"][0] > (m["cores"] or 1) * 0.75 else ""))
    stream.write("versions: %s\n\n" % ", ".join("%s %s" % kv for kv in report["versions"].items()))
    table, notes = format_table(report)
    stream.write(table + "\n")
    for n in notes:
        stream.write("  note: " + n + "\n")
    if report.get("baseline_missing"):
        stream.write("\n" + report["baseline_missing"] + "\n")
    for r in report["measures"]:
        d = r["detail"]
        if r["id"] == "live_flat" and d.get("subject_points"):
            stream.write("\nswitch ns (round-robin over %d of N live fibers):\n" % d["hot"])
            stream.write("  %12s  %10s  %10s\n" % ("N", report["subject"], report["baseline"] or ""))
            bp = {p["n"]: p["ns"] for p in d.get("baseline_points", [])}
            for p in d["subject_points"]:
                stream.write("  %12s  %10.1f  %10s\n" % (format(p["n"], ","), p["ns"],
                                                          "%.1f" % bp[p["n"]] if p["n"] in bp else "-"))
        if r["id"] == "core_switch" and d.get("variants"):
            v = d["variants"]
            stream.write("\nraw C core switch, medians (ns per switch):\n"
                         "  %6.1f  default: each fiber keeps its own FP environment (the row above)\n"
                         "  %6.1f  FP environment shared by both fibers (PC_FIBER_SHARE_FPENV):\n"
                         "          no MXCSR read (microcoded: ~4.5 ns in a loop of its own on\n"
                         "          AMD EPYC; the switch overlaps most of it)\n"
                         "  %6.1f  default, switched from two different call sites: each return\n"
                         "          is mispredicted (the shape of the caller, not of the switch)\n"
                         % (v["default"], v["shared_fpenv"], v["two_sites"]))
            if "floor" in v:
                stream.write("  %6.1f  floor: a bare register swap between two stacks, nothing copied\n"
                             "  %6.1f  floor, also reading the FP control state (tests/core/floor.S)\n"
                             % (v["floor"], v["floor_fp"]))
    c = report["counts"]
    # (worded so that no CI log reader mistakes it for a test runner's summary)
    stream.write("\ntargets: %d met, %d missed, %d measure errors, %d other (of %d measures)\n"
                 % (c["pass"], c["fail"], c["error"], c["other"], len(report["measures"])))


# ---------------------------------------------------------------- CLI

def add_arguments(p):
    p.add_argument("--quick", action="store_true", help="small sizes: finishes in under 30 s")
    p.add_argument("--json", action="store_true", help="print a JSON report to stdout (table goes to stderr)")
    p.add_argument("--plot", metavar="FILE.png",
                   help="draw switch cost and memory per fiber against Python stack depth (needs matplotlib)")
    p.add_argument("--only", metavar="IDS", help="comma-separated measure ids to run (default: all)")
    p.add_argument("--list", action="store_true", help="list the measure ids and exit")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed (not only on errors)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def _load_baseline():
    try:
        return work.load_impl(BASELINE), None
    except ImportError as e:
        return None, ("greenlet is not installed (%s): only pycoro's own numbers are shown, no "
                      "ratios. Install the baseline with: pip install 'pycoro[bench]' "
                      "(or pip install greenlet)" % e)


def run(args, measure_list=None):
    """Run the benchmark; returns (report dict, exit code)."""
    sizes = Sizes(args.quick)
    all_measures = measure_list if measure_list is not None else measures(sizes)
    if args.list:
        for m in all_measures:
            print("%-16s %s" % (m.id, m.title))
        return None, 0
    if args.only:
        want = [x.strip() for x in args.only.split(",") if x.strip()]
        unknown = set(want) - {m.id for m in all_measures}
        if unknown:
            raise SystemExit("unknown measure id(s): %s (see --list)" % ", ".join(sorted(unknown)))
        all_measures = [m for m in all_measures if m.id in want]

    plt = None
    if args.plot:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt  # noqa: F811
        except ImportError:
            raise SystemExit("--plot needs matplotlib, which is not installed: "
                             "pip install 'pycoro[bench]' (or pip install matplotlib)")

    subject_name = os.environ.get("PYCORO_BENCH_SUBJECT", SUBJECT_DEFAULT)
    subject = work.load_impl(subject_name)
    baseline, missing = _load_baseline()
    if missing:
        sys.stderr.write("pycoro bench: " + missing + "\n")
    n_impl = 2 if baseline else 1
    steps = sum(max(1, m.steps * n_impl // 2) for m in all_measures)
    if args.plot:
        steps += len(sizes.depths) * (sizes.depth_repeat + 1) * n_impl
    progress = Progress(steps, enabled=not args.no_progress)
    ctx = Ctx(subject, baseline, sizes, progress)

    load_before = _loadavg()
    rows = [run_measure(m, ctx) for m in all_measures]
    curves = None
    if args.plot:
        curves = depth_curves(ctx)
    progress.finish()

    counts = {"pass": 0, "fail": 0, "error": 0, "other": 0}
    for r in rows:
        counts[r["status"] if r["status"] in counts else "other"] += 1
    versions = {subject.name: subject.version}
    if baseline:
        versions[baseline.name + " (baseline)"] = baseline.version
    report = {
        "tool": "python -m pycoro bench",
        "schema": 1,
        "quick": bool(args.quick),
        "scale": sizes.scale,
        "subject": subject.name,
        "baseline": baseline.name if baseline else None,
        "baseline_missing": missing,
        "versions": versions,
        "machine": dict(machine_info(), loadavg_before=load_before),
        "measures": rows,
        "counts": counts,
        "depth_curves": curves,
    }
    if args.plot:
        from . import _bench_plot

        _bench_plot.plot(report, args.plot, plt)
        report["plot"] = os.path.abspath(args.plot)
    code = 1 if counts["error"] or (args.strict and counts["fail"]) else 0
    return report, code


def main(argv=None, measure_list=None):
    p = argparse.ArgumentParser(prog="python -m pycoro bench", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    args = p.parse_args(argv)
    return cli(args, measure_list)


def cli(args, measure_list=None):
    report, code = run(args, measure_list)
    if report is None:
        return code
    if args.json:
        print_report(report, sys.stderr)
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        print_report(report, sys.stdout)
    if report.get("plot"):
        sys.stderr.write("plot written to %s\n" % report["plot"])
    return code
