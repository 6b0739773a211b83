"""The fiber rows of `python -m pycoro bench` (switch, create, suspended,
RSS at depths 5/20/50, C re-entry, live-fiber flatness, raw C core) and the
table of every row with its target.  Each row function returns its
replicates for runner.assess.  May call: runner, stats, workloads,
rows_net (the gevent and net rows), rows_multihub (the multi-hub rows).
"""
from . import rows_multihub, rows_net, stats
from . import workloads as work
from .runner import Measure, process_median, run_worker


def _timing(ctx, cmd, label, **kw):
    z = ctx.sizes
    return ctx.rounds(z.procs, label, lambda i: process_median(
        run_worker(cmd, impl_name=i.name, values=z.values, min_ns=z.min_ns, **kw)))


def m_roundtrip(ctx):
    r = _timing(ctx, "roundtrip", "switch round trip (subprocess)")
    gen = [work.roundtrip_generator_ns(20_000) for _ in range(3)]
    r["detail"] = {"values_per_process": ctx.sizes.values, "generator_send_ns": stats.median(gen)}
    return r


def m_create(ctx):
    # Allocation-bound: once a process has used pycoro, its data-stack chunk
    # cache (csrc/binding/chunks.c) would serve greenlet's chunk allocations
    # too and flatter the baseline; every replicate is a fresh process anyway.
    r = _timing(ctx, "create", "create+run+free (subprocess)")
    gen = [work.create_run_generator_ns(2_000) for _ in range(3)]
    r["detail"] = {"generator_ns": stats.median(gen)}
    return r


def m_reentry(ctx):
    return _timing(ctx, "reentry", "switch inside sorted(key=) (subprocess)")


def m_suspended(ctx):
    z = ctx.sizes
    parts = {}

    def one(impl):
        got = run_worker("suspended", impl_name=impl.name, n=z.suspended)
        parts.setdefault(impl.name, []).append([got["create"] / 1e6, got["free"] / 1e6])
        return (got["create"] + got["free"]) / 1e6

    r = ctx.rounds(z.suspended_repeat, "%d fibers at depth 5" % z.suspended, one)
    gen = sum(work.suspended_generators(z.suspended)) / 1e6
    r["detail"] = {"n": z.suspended, "depth": 5, "generator_ms": gen, "create_free_ms": parts}
    r["title"] = "create %s fibers suspended at depth 5, free them" % format(z.suspended, ",")
    return r


def rss_rounds(ctx, depth, repeat, n):
    saved = {}

    def one(impl):
        got = run_worker("rss", impl_name=impl.name, n=n, depth=depth)
        saved[impl.name] = got["stack_saved"]
        return got["rss_per_fiber"]

    r = ctx.rounds(repeat, "RSS per fiber at depth %d (subprocess)" % depth, one)
    r["detail"] = {"n": n, "depth": depth, "stack_saved": saved}
    return r


def _rss_measure(depth, target, steps):
    def fn(ctx):
        z = ctx.sizes
        r = rss_rounds(ctx, depth, z.rss_repeat, z.rss_n)
        ctx.rss_rows[depth] = r
        return r
    return Measure("rss_depth%d" % depth, "RSS per suspended fiber at Python depth %d" % depth,
                   "B", target, "ratio", steps, fn)


def _live_result(ctx):
    """live_rounds fresh processes per implementation, each growing one
    population through every size; shared by the flatness and 'N alive' rows."""
    if getattr(ctx, "_live", None) is None:
        z = ctx.sizes

        def one(impl):
            return run_worker("live", impl_name=impl.name, sizes=z.live_sizes, hot=z.live_hot,
                              switches=z.live_switches, repeat=z.live_repeat)
        ctx._live = ctx.rounds(z.live_rounds, "live fibers up to %s (subprocess)"
                               % format(z.live_sizes[-1], ","), one)
    return ctx._live


def _pow10(n):
    k = len(str(n)) - 1
    return "10^%d" % k if n == 10 ** k else format(n, ",")


def round_flatness(result):
    return stats.flatness({p["n"]: p["samples"] for p in result["points"]})


def m_live_flat(ctx):
    live = _live_result(ctx)
    s, b = live["subject"], live["baseline"]
    detail = {"sizes": ctx.sizes.live_sizes, "hot": ctx.sizes.live_hot,
              "subject_points": [x["points"] for x in s]}
    if b:
        detail["baseline_points"] = [x["points"] for x in b]
        detail["baseline_flatness"] = [round_flatness(x) for x in b]
    values = [round_flatness(x) for x in s]
    return {"values": values, "subject": values,
            "baseline": detail.get("baseline_flatness"), "detail": detail,
            "title": "switch cost flat in live fibers (10^2..%s): max/min of medians, per round"
                     % _pow10(ctx.sizes.live_sizes[-1])}


def m_live_many(ctx):
    live = _live_result(ctx)
    s, b = live["subject"], live["baseline"]
    mib = [x["rss_delta"] / 2 ** 20 for x in s]
    return {"works": True, "values": mib, "subject": mib,
            "baseline": [x["rss_delta"] / 2 ** 20 for x in b] if b else None,
            "detail": {"alive": s[0]["alive"], "rss_total_mb": [x["rss_total"] / 2 ** 20 for x in s],
                       "finish_s": [x["finish_s"] for x in s]},
            "title": "%s fibers alive at once (RSS, MiB)" % format(s[0]["alive"], ",")}


def m_core(ctx):
    z = ctx.sizes
    values, runs = [], []
    for k in range(z.core_procs):
        ctx.progress.step("raw C core switch (cffi, subprocess %d/%d)" % (k + 1, z.core_procs))
        got = run_worker("core", n=z.core, repeat=z.core_repeat)
        ctx.progress.advance()
        if "skipped" in got:
            return got
        values.append(stats.median(got["samples"]))
        runs.append(got["variant_samples"])
    variants = {name: stats.median([stats.median(r[name]) for r in runs]) for name in runs[0]}
    return {"values": values, "subject": values, "subject_raw": runs,
            "detail": {"n": z.core, "variants": variants}}


def measures(sizes):
    z = sizes
    per_timing = 2 * z.procs
    return [
        Measure("roundtrip", "switch round trip main -> fiber -> main", "ns", 0.25, "ratio",
                per_timing, m_roundtrip),
        Measure("create_run_free", "create + start + run to end + free", "ns", 0.05, "ratio",
                per_timing, m_create),
        Measure("suspended_100k", "create 100,000 fibers suspended at depth 5, free them", "ms",
                0.30, "ratio", 2 * z.suspended_repeat, m_suspended),
        # issue 19's goals for depth 20 and 50; depth 5's target predates them
        _rss_measure(5, 0.50, 2 * z.rss_repeat),
        _rss_measure(20, 0.60, 2 * z.rss_repeat),
        _rss_measure(50, 0.70, 2 * z.rss_repeat),
        Measure("switch_reentry", "switch with a C re-entry (inside sorted(key=...))", "ns", 0.40,
                "ratio", per_timing, m_reentry),
        Measure("live_flat", "switch cost flat in live fibers (10^2..10^6): max/min", "x", 1.5,
                "value", 2 * z.live_rounds, m_live_flat),
        Measure("live_1m", "1,000,000 fibers alive at once (RSS, MiB)", "MiB", None, "works", 0,
                m_live_many),
        Measure("core_switch", "raw C core switch, no Python (cffi)", "ns", 10.0, "value",
                z.core_procs, m_core),
    ] + rows_net.measures(z) + rows_multihub.measures(z)
