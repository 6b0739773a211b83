"""`python -m pycoro bench --compare OLD.json NEW.json`: per row, the change
of the judged statistic (the per-round ratio for ratio rows, the value
otherwise) from one saved run to another, with a bootstrap interval and a
verdict: faster, slower, or no significant change.

Owns: replicates() (a row's samples, from this schema or the first one),
compare(), print_compare().  May call: stats, report.
"""
import json

from . import report, stats


def replicates(row):
    """The replicates the row's verdict was judged on (lower is better)."""
    s = row.get("samples") or {}
    if s.get("judged"):
        return s["judged"]
    d = row.get("detail") or {}         # schema 1 (before the verdicts had spreads)
    if d.get("subject_samples") and d.get("baseline_samples"):
        return stats.paired_ratios(d["subject_samples"], d["baseline_samples"])
    if d.get("samples"):
        return d["samples"]
    return [row["value"]] if row.get("value") is not None else []


def compare(old, new):
    """One dict per row id present in both reports, in NEW's order."""
    before = {r["id"]: r for r in old["measures"]}
    out = []
    for r in new["measures"]:
        o = before.get(r["id"])
        if o is None:
            continue
        c = stats.change(replicates(o), replicates(r))
        c.update(id=r["id"], title=r["title"], kind=r["kind"], unit=r["unit"],
                 old_spread=list(stats.median_interval(replicates(o))[:2]),
                 new_spread=list(stats.median_interval(replicates(r))[:2]))
        out.append(c)
    return out


def _one(c, v, spread):
    if v is None:
        return "-"
    f = (lambda x: "%.3f" % x) if c["kind"] == "ratio" else (lambda x: report.fmt(x, c["unit"]))
    lo, hi = spread
    return f(v) if lo is None or lo == hi else "%s [%s-%s]" % (f(v), f(lo), f(hi))


def print_compare(old_path, new_path, stream):
    with open(old_path) as fh:
        old = json.load(fh)
    with open(new_path) as fh:
        new = json.load(fh)
    rows = compare(old, new)
    head = ["measure", "old", "new", "new/old [interval]", "verdict"]
    cells = []
    for c in rows:
        ch = "-" if c["ratio"] is None else (
            "%.3f" % c["ratio"] if c["spread"][0] is None
            else "%.3f [%.3f-%.3f]" % (c["ratio"], c["spread"][0], c["spread"][1]))
        cells.append([c["id"], _one(c, c["old"], c["old_spread"]), _one(c, c["new"], c["new_spread"]),
                      ch, c["verdict"]])
    widths = [max(len(x[i]) for x in cells + [head]) for i in range(len(head))]
    line = lambda xs: "| " + " | ".join(x.ljust(w) for x, w in zip(xs, widths)) + " |"  # noqa: E731
    stream.write("%s -> %s (ratio rows compare pycoro/baseline per round; lower is better)\n"
                 % (old_path, new_path))
    stream.write("\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                           + [line(x) for x in cells]) + "\n")
    stream.write("  [interval]: %d%% bootstrap interval of median(new)/median(old); faster/slower "
                 "only when it excludes 1.\n" % round(100 * stats.CONFIDENCE))
    if bool(old.get("quick")) != bool(new.get("quick")) or old.get("scale") != new.get("scale"):
        stream.write("  note: the two runs used different sizes (--quick or PYCORO_BENCH_SCALE): "
                     "rows that depend on the size (fiber counts, live fibers) differ for that "
                     "reason too.\n")
    return rows
