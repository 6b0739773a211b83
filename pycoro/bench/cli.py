"""`python -m pycoro bench`: the command line (pycoro/__main__.py dispatches
here; `python -m pycoro.bench` is the same).

Owns: the arguments, run() (the rows, the --plot curves, the JSON report)
and the exit code.  May call: every module of pycoro.bench; greenlet and
matplotlib load only when a row or --plot needs them.
"""
import argparse
import json
import os
import sys

from . import report as rep
from . import rows, stats
from . import workloads as work
from .runner import Ctx, process_median, run_measure, run_worker
from .sizes import Progress, Sizes

SUBJECT_DEFAULT = "pycoro"
BASELINE = "greenlet"


def add_arguments(p):
    p.add_argument("--quick", action="store_true", help="small sizes and fewer processes")
    p.add_argument("--json", metavar="FILE",
                   help="write the report with every sample to FILE ('-': stdout, the table then "
                        "goes to stderr)")
    p.add_argument("--compare", nargs=2, metavar=("OLD.json", "NEW.json"),
                   help="compare two --json reports row by row and exit (runs nothing)")
    p.add_argument("--plot", metavar="FILE.png",
                   help="draw switch cost and memory per fiber against Python stack depth (needs matplotlib)")
    p.add_argument("--only", metavar="IDS", help="comma-separated measure ids to run (default: all)")
    p.add_argument("--list", action="store_true", help="list the measure ids and exit")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 when a target is missed (FAIL; not on inconclusive rows)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def _load_baseline():
    try:
        return work.load_impl(BASELINE), None
    except ImportError as e:
        return None, ("greenlet is not installed (%s): only pycoro's own numbers are shown, no "
                      "ratios. Install the baseline with: pip install 'pycoro[bench]' "
                      "(or pip install greenlet)" % e)


def _curve(values_by_role):
    return {role: {"median": stats.median(v), "interval": list(stats.median_interval(v)[:2])}
            for role, v in values_by_role.items() if v}


def depth_curves(ctx):
    """Switch round trip and RSS per fiber against Python depth, both
    implementations, each point a median with its interval; RSS at the
    depths of the RSS rows reuses their processes."""
    z = ctx.sizes
    out = {"depths": z.depths, "names": {"subject": ctx.subject.name}, "roundtrip_ns": [],
           "rss_per_fiber": []}
    if ctx.baseline is not None:
        out["names"]["baseline"] = ctx.baseline.name
    for d in z.depths:
        r = ctx.rounds(z.depth_repeat, "plot: round trip at depth %d" % d, lambda i: process_median(
            run_worker("roundtrip", impl_name=i.name, values=z.values, depth=d, min_ns=z.min_ns)))
        out["roundtrip_ns"].append(_curve({"subject": r["subject"], "baseline": r["baseline"]}))
        r = ctx.rss_rows.get(d) or rows.rss_rounds(ctx, d, 1, z.depth_rss_n)
        out["rss_per_fiber"].append(_curve({"subject": r["subject"], "baseline": r["baseline"]}))
    return out


def _select(all_measures, only):
    if not only:
        return all_measures
    want = [x.strip() for x in only.split(",") if x.strip()]
    unknown = set(want) - {m.id for m in all_measures}
    if unknown:
        raise SystemExit("unknown measure id(s): %s (see --list)" % ", ".join(sorted(unknown)))
    return [m for m in all_measures if m.id in want]


def _matplotlib():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib, which is not installed: "
                         "pip install 'pycoro[bench]' (or pip install matplotlib)")


def run(args, measure_list=None):
    """Run the benchmark; returns (report dict, exit code)."""
    sizes = Sizes(args.quick)
    all_measures = measure_list if measure_list is not None else rows.measures(sizes)
    if args.list:
        for m in all_measures:
            print("%-20s %s" % (m.id, m.title))
        return None, 0
    chosen = _select(all_measures, args.only)
    plt = _matplotlib() if args.plot else None

    subject = work.load_impl(os.environ.get("PYCORO_BENCH_SUBJECT", SUBJECT_DEFAULT))
    baseline, missing = _load_baseline()
    if missing:
        sys.stderr.write("pycoro bench: " + missing + "\n")
    n_impl = 2 if baseline else 1
    steps = sum(max(1, m.steps * n_impl // 2) for m in chosen)
    if args.plot:
        steps += len(sizes.depths) * (sizes.depth_repeat + 1) * n_impl
    progress = Progress(steps, enabled=not args.no_progress)
    ctx = Ctx(subject, baseline, sizes, progress)

    load_before = rep.loadavg()
    measured = [run_measure(m, ctx) for m in chosen]
    curves = depth_curves(ctx) if args.plot else None
    progress.finish()

    counts = {"pass": 0, "fail": 0, "inconclusive": 0, "error": 0, "other": 0}
    for r in measured:
        counts[r["status"] if r["status"] in counts else "other"] += 1
    versions = {subject.name: subject.version}
    if baseline:
        versions[baseline.name + " (baseline)"] = baseline.version
    report = {
        "tool": "python -m pycoro bench",
        "schema": 2,
        "quick": bool(args.quick),
        "scale": sizes.scale,
        "subject": subject.name,
        "baseline": baseline.name if baseline else None,
        "baseline_missing": missing,
        "versions": versions,
        "machine": dict(rep.machine_info(), loadavg_before=load_before),
        "method": {"confidence": stats.CONFIDENCE, "min_replicates": stats.MIN_REPLICATES,
                   "mode_gap": stats.MODE_GAP, "noisy": stats.NOISY,
                   "processes": sizes.procs, "values_per_process": sizes.values,
                   "burst_min_ns": sizes.min_ns, "bursts_per_sample": work.BURSTS},
        "measures": measured,
        "counts": counts,
        "depth_curves": curves,
    }
    if args.plot:
        from . import plot

        plot.plot(report, args.plot, plt)
        report["plot"] = os.path.abspath(args.plot)
    code = 1 if counts["error"] or (args.strict and counts["fail"]) else 0
    return report, code


def main(argv=None, measure_list=None):
    p = argparse.ArgumentParser(prog="python -m pycoro bench", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return command(p.parse_args(argv), measure_list)


def command(args, measure_list=None):
    if args.compare:
        from . import compare

        compare.print_compare(args.compare[0], args.compare[1], sys.stdout)
        return 0
    report, code = run(args, measure_list)
    if report is None:
        return code
    to_stdout = args.json == "-"
    rep.print_report(report, sys.stderr if to_stdout else sys.stdout)
    if args.json:
        text = json.dumps(report, indent=1) + "\n"
        if to_stdout:
            sys.stdout.write(text)
        else:
            with open(args.json, "w") as fh:
                fh.write(text)
            sys.stderr.write("report written to %s\n" % os.path.abspath(args.json))
    if report.get("plot"):
        sys.stderr.write("plot written to %s\n" % report["plot"])
    return code
