"""The multi-hub and free-threading rows of `python -m pycoro bench`
(issue 17): CPU-bound fan-out on 2 hubs against 1 (ThreadPoolExecutor and
multiprocessing.Pool beside it), cross-hub Channel ping-pong and stream
against queue.Queue between threads and asyncio's call_soon_threadsafe
between loops, and the switch throughput of 2 threads against 1.  Every
value is one fresh worker process (multihub_work.py); the configurations of
a row alternate round by round like every other row's implementations, and
its verdict judges the per-round ratios (runner.assess).

Fan-out is judged only on a free-threaded build (on a GIL build two hubs
share one GIL: the row is shown, not judged); the switch-threads row needs
a free-threaded build and says so (status "n/a") elsewhere.
May call: runner, stats, multihub_work.
"""
from . import stats
from .multihub_work import free_threaded
from .runner import Measure, run_worker

FANOUT_SPEEDUP = 1.7    # hubs=2 at least 1.7x faster than hubs=1
SWITCH_SCALING = 1.8    # 2 threads at least 1.8x the switches of 1


def alternate(ctx, repeat, label, configs, one):
    """`repeat` rounds of one(config) for every config, the order rotating
    round by round; {config: [value per round]}."""
    out = {c: [] for c in configs}
    for r in range(repeat):
        k = r % len(configs)
        for c in configs[k:] + configs[:k]:
            ctx.progress.step("%s: %s (%d/%d)" % (label, c, r + 1, repeat))
            out[c].append(one(c))
            ctx.progress.advance()
    return out


def _ratio_result(values, subject, baseline, detail):
    return {"subject": values[subject], "baseline": values[baseline], "detail": detail}


def _fanout_values(ctx):
    if getattr(ctx, "_fanout", None) is None:
        z = ctx.sizes
        ctx._fanout = alternate(
            ctx, z.mh_repeat, "fan-out %d tasks" % z.mh_tasks,
            ["hubs1", "hubs2", "threads", "processes", "serial"],
            lambda c: 1e3 * run_worker("mh_fanout", config=c, work=z.mh_work,
                                         tasks=z.mh_tasks)["s"])
    return ctx._fanout


def fanout_target(ft):
    """The time ratio hubs=2 / hubs=1 to meet, or None (shown, not judged)
    on a GIL build."""
    return 1 / FANOUT_SPEEDUP if ft else None


def _fanout_row(baseline):
    def fn(ctx):
        v = _fanout_values(ctx)
        med = {c: stats.median(x) for c, x in v.items()}
        detail = {"ms_median": med, "ms": v, "tasks": ctx.sizes.mh_tasks,
                  "work": ctx.sizes.mh_work, "free_threaded": free_threaded(),
                  "speedup_hubs2_over_hubs1": med["hubs1"] / med["hubs2"]}
        r = _ratio_result(v, "hubs2", baseline, detail)
        if baseline == "hubs1" and not free_threaded():
            r["note"] = "GIL build: hubs share one GIL, shown as information (judged on a free-threaded build)"
        return r
    return fn


def _pair_row(cmd, subject, other, label):
    def fn(ctx):
        z = ctx.sizes
        n = z.mh_round_trips if cmd == "mh_pingpong" else z.mh_items
        v = alternate(ctx, z.mh_repeat, label, [subject, other],
                      lambda c: run_worker(cmd, config=c, n=n)["ns"])
        return _ratio_result(v, subject, other, {"n": n, "ns": v, "other": other})
    return fn


def m_switch_threads(ctx):
    if not free_threaded():
        return {"not_applicable": "needs a free-threaded build (python3.13t, GIL off)"}
    z = ctx.sizes
    impls = ["pycoro", "greenlet"]
    try:
        run_worker("mh_switch_threads", impl_name="greenlet", n=100, repeat=1)
    except RuntimeError as e:
        impls = ["pycoro"]
        why = "greenlet did not run on this build: %s" % e
    else:
        why = None
    got = alternate(ctx, z.mh_repeat, "switch, 2 threads vs 1", impls,
                    lambda c: run_worker("mh_switch_threads", impl_name=c, n=z.ft_switches,
                                         repeat=3))
    values = [g["value"] for g in got["pycoro"]]
    r = {"values": values, "subject": values, "detail": {
        "one_thread_ns": [g["one_ns"] for g in got["pycoro"]],
        "two_threads_ns": [g["two_ns"] for g in got["pycoro"]], "round_trips": z.ft_switches}}
    if "greenlet" in got:
        r["baseline"] = [g["value"] for g in got["greenlet"]]
        r["detail"]["greenlet_version"] = got["greenlet"][0]["version"]
    if why:
        r["note"] = why
    return r


def measures(z):
    ft = free_threaded()
    steps = 5 * z.mh_repeat
    pair = 2 * z.mh_repeat
    return [
        Measure("mh_fanout", "fan-out: 100 CPU-bound tasks, time on 2 hubs / 1 hub", "ms",
                fanout_target(ft), "ratio", steps, _fanout_row("hubs1"), modes=False),
        Measure("mh_fanout_threads", "fan-out: time on 2 hubs / ThreadPoolExecutor(2)", "ms",
                None, "ratio", 0, _fanout_row("threads"), modes=False),
        Measure("mh_fanout_pool", "fan-out: time on 2 hubs / multiprocessing.Pool(2)", "ms",
                None, "ratio", 0, _fanout_row("processes"), modes=False),
        Measure("mh_pingpong_queue", "cross-hub Channel ping-pong, per round trip, vs queue.Queue",
                "ns", 1.0, "ratio", pair,
                _pair_row("mh_pingpong", "pycoro", "queue", "ping-pong vs queue.Queue"), modes=False),
        Measure("mh_pingpong_asyncio", "cross-hub Channel ping-pong, per round trip, vs asyncio "
                "2 loops", "ns", 1.0, "ratio", pair,
                _pair_row("mh_pingpong", "pycoro", "asyncio", "ping-pong vs asyncio"), modes=False),
        Measure("mh_stream_queue", "cross-hub Channel(256) stream, per item, vs queue.Queue(256)",
                "ns", 1.0, "ratio", pair,
                _pair_row("mh_stream", "pycoro", "queue", "stream vs queue.Queue"), modes=False),
        Measure("mh_stream_asyncio", "cross-hub Channel(256) stream, per item, vs asyncio 2 loops",
                "ns", 1.0, "ratio", pair,
                _pair_row("mh_stream", "pycoro", "asyncio", "stream vs asyncio"), modes=False),
        Measure("ft_switch_threads", "free-threaded: switch, 2 threads' time per switch / 1 "
                "thread's (1.8x = 0.556)", "x", 1 / SWITCH_SCALING if ft else None, "value",
                pair if ft else 0, m_switch_threads),
    ]
