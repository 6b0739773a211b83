"""The gevent and network rows of `python -m pycoro bench`: compiled gevent
on greenlet vs on pycoro (gevent_work.py, a fresh process per sample), and
the loopback echo of pycoro.net against asyncio, gevent, uvloop and trio
(net.py: a fresh server process per sample, a C load generator).
May call: runner, gevent_work, net.
"""
from .runner import Measure, run_worker


def _gevent_row(ctx, label, worker, **kwargs):
    from . import gevent_work
    why = gevent_work.gevent_available()
    if why:
        return {"skipped": why}
    r = ctx.rounds(ctx.sizes.gevent_repeat, label + " (subprocess)",
                   lambda i: run_worker(worker, impl_name=i.name, **kwargs)["ns"])
    r["detail"] = kwargs
    return r


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
    from . import net
    why = net.missing(other) or net.missing("pycoro")
    if why:
        return {"skipped": why}
    z = ctx.sizes
    s, b = [], []
    for r in range(z.net_repeat):
        for impl in (("pycoro", other) if r % 2 == 0 else (other, "pycoro")):
            ctx.progress.step("echo %d B: %s (%d/%d)" % (size, impl, r + 1, z.net_repeat))
            (s if impl == "pycoro" else b).append(net.sample(impl, size, z.net_requests))
            ctx.progress.advance()
    return {"subject": s, "baseline": b,
            "detail": {"size": size, "connections": 100, "requests": z.net_requests, "other": other,
                       "requests_per_second": {"pycoro": [1e9 / x for x in s],
                                               other: [1e9 / x for x in b]}}}


def _net_echo_measure(other, size, target, steps):
    label = {"asyncio": "asyncio streams", "gevent": "gevent StreamServer",
             "uvloop": "asyncio+uvloop", "trio": "trio"}[other]
    return Measure("net_echo_%s_%s" % ("64" if size == 64 else "4k", other),
                   "net: echo 100 conns %s, per request, vs %s" % ("64 B" if size == 64 else "4 KiB", label),
                   "ns", target, "ratio", steps, lambda ctx: _net_echo_row(ctx, other, size),
                   modes=False)   # the baseline is another server, not greenlet's switch


def m_net_idle(ctx):
    from . import net
    z = ctx.sizes
    out = {}
    for impl in net.IMPLS:
        if net.missing(impl):
            continue
        ctx.progress.step("idle connections: %s" % impl)
        out[impl] = net.rss_idle(impl, z.net_idle)
        ctx.progress.advance()
    return {"works": True, "values": [out["pycoro"]], "subject": [out["pycoro"]],
            "title": "net: server RSS per idle connection (%s connections)" % format(z.net_idle, ","),
            "detail": {"bytes_per_connection": out, "connections": z.net_idle}}


def measures(z):
    g = 2 * z.gevent_repeat
    n = 2 * z.net_repeat
    # issue 18's goals: at least asyncio's and gevent's requests/s (ns ratio <= 1),
    # at least 0.8x uvloop's (ns ratio <= 1.25)
    return [
        Measure("gevent_sleep0", "gevent: sleep(0) with 1,000 greenlets, per sleep", "ns", 0.7,
                "ratio", g, m_gevent_sleep0),
        Measure("gevent_spawn_join", "gevent: spawn + joinall 10,000 trivial greenlets", "ns",
                0.5, "ratio", g, m_gevent_spawn_join),
        Measure("gevent_echo", "gevent: loopback echo, 100 connections, per message", "ns",
                1.0, "ratio", g, m_gevent_echo),
        _net_echo_measure("asyncio", 64, 1.0, n),
        _net_echo_measure("gevent", 64, 1.0, n),
        _net_echo_measure("uvloop", 64, 1.25, n),
        _net_echo_measure("trio", 64, 1.0, n),
        _net_echo_measure("asyncio", 4096, 1.0, n),
        _net_echo_measure("gevent", 4096, 1.0, n),
        _net_echo_measure("uvloop", 4096, 1.25, n),
        _net_echo_measure("trio", 4096, 1.0, n),
        Measure("net_idle", "net: server RSS per idle connection", "B", None, "works", 3, m_net_idle),
    ]
