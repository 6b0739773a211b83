"""Runs the rows of `python -m pycoro bench`: starts the worker processes
(pycoro/bench/workers.py), alternates the two implementations round by
round, and turns each row's replicates into its verdict.  Owns Measure,
Ctx and the row dict of the JSON report.  May call: stats, sizes.
"""
import json
import subprocess
import sys
import time

from . import stats


def run_worker(cmd, **kwargs):
    """Run one worker in a fresh interpreter; its result dict."""
    proc = subprocess.run(
        [sys.executable, "-m", "pycoro.bench.workers", cmd, json.dumps(kwargs)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-6:]
        raise RuntimeError("worker %s %s exited with %d: %s"
                           % (cmd, kwargs.get("impl_name", ""), proc.returncode, " | ".join(tail)))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def process_median(result):
    """A timing worker's replicate: the median of its samples (and the samples)."""
    return stats.median(result["samples"]), result["samples"]


class Ctx:
    def __init__(self, subject, baseline, sizes, progress):
        self.subject = subject          # workloads.Impl
        self.baseline = baseline        # workloads.Impl or None
        self.sizes = sizes
        self.progress = progress
        self.rss_rows = {}              # depth -> rounds, reused by --plot

    def impls(self):
        return [i for i in (self.subject, self.baseline) if i is not None]

    def rounds(self, repeat, label, fn):
        """`repeat` rounds; in each, fn(impl) for both implementations back
        to back, alternating which goes first.  fn returns a replicate value
        or (value, raw samples).  A dict with the subject's and the
        baseline's values (index = round) and raw samples."""
        out = {"subject": [], "baseline": [] if self.baseline else None,
               "subject_raw": [], "baseline_raw": [] if self.baseline else None}
        impls = self.impls()
        for r in range(repeat):
            for impl in (impls if r % 2 == 0 else impls[::-1]):
                self.progress.step("%s (%s, %d/%d)" % (label, impl.name, r + 1, repeat))
                role = "subject" if impl is self.subject else "baseline"
                got = fn(impl)
                value, raw = got if isinstance(got, tuple) else (got, None)
                out[role].append(value)
                out[role + "_raw"].append(raw)
                self.progress.advance()
        return out


class Measure:
    """One row of the table.  kind: "ratio" (subject / baseline, per round,
    <= target), "value" (the subject's replicates <= target) or "works"
    (it ran and checked its result; the numbers are shown, not judged)."""

    def __init__(self, id, title, unit, target, kind, steps, fn, modes=True):
        self.modes = modes      # judge against the baseline's better mode (greenlet's rows)
        self.id = id
        self.title = title
        self.unit = unit
        self.target = target
        self.kind = kind
        self.steps = steps      # progress steps, from sizes
        self.fn = fn            # fn(ctx) -> dict (see assess)


def _fmt_for(kind, unit):
    if kind == "ratio":
        return lambda x: "%.3f" % x
    if unit == "x":
        return lambda x: "%.2fx" % x
    return lambda x: "%.3g %s" % (x, unit)


def assess(m, r, row):
    """Fill `row` from a measure's result r: subject/baseline replicate
    lists (r["subject"], r["baseline"]; for "value" rows r["values"] are
    the judged replicates) and r["works"] for "works" rows."""
    s, b = r.get("subject") or [], r.get("baseline")
    row["title"] = r.get("title", m.title)
    row["detail"] = r.get("detail", {})
    row["samples"] = {k: r[k] for k in ("subject", "baseline", "subject_raw", "baseline_raw")
                      if r.get(k) is not None}
    row["subject"] = stats.median(s)
    row["baseline"] = stats.median(b) if b else None
    fmt = _fmt_for(m.kind, m.unit)
    if m.kind == "ratio":
        if b is None:
            v = stats.judge(s, None)
            v["status"] = "no baseline"
            judged = s
        else:
            keep = stats.better_mode(b) if m.modes else list(range(len(b)))
            row["baseline"] = stats.median([b[i] for i in keep])
            if len(keep) < len(b):
                row["baseline_modes"] = {
                    "better": sorted(b[i] for i in keep),
                    "worse": sorted(b[i] for i in range(len(b)) if i not in keep)}
            judged = stats.paired_ratios(s, b, keep)
            v = stats.judge(judged, m.target, fmt)
            if not judged:
                v["why"] = "the baseline measured 0 (below the resolution)"
            row["ratio"] = v["value"]
        row["samples"]["better_mode"] = None if b is None else keep
    elif m.kind == "value":
        judged = r["values"]
        v = stats.judge(judged, m.target, fmt)
    else:
        judged = r.get("values") or s
        v = stats.judge(judged, None)
        v["status"] = "pass" if r.get("works") else "fail"
    row["samples"]["judged"] = judged
    row["value"] = None if v["status"] == "no baseline" else v["value"]
    row["spread"] = None if v["status"] == "no baseline" else v["spread"]
    row["coverage"] = v["coverage"]
    row["noise"] = v["noise"]
    row["status"] = v["status"]
    if v.get("why"):
        row["error"] = v["why"]
    return row


def run_measure(m, ctx):
    row = {"id": m.id, "title": m.title, "unit": m.unit, "kind": m.kind, "target": m.target,
           "subject": None, "baseline": None, "ratio": None, "value": None, "spread": None,
           "status": None, "detail": {}, "samples": {}, "error": None}
    t0 = time.monotonic()
    try:
        r = m.fn(ctx)
        if "skipped" in r:
            row["status"] = "skipped"
            row["error"] = r["skipped"]
        elif "not_applicable" in r:     # meaningless on this build (not a missing dependency)
            row["status"] = "n/a"
            row["error"] = r["not_applicable"]
        else:
            assess(m, r, row)
            if r.get("note"):
                row["note"] = r["note"]
    except Exception as e:
        row["status"] = "error"
        row["error"] = "%s: %s" % (type(e).__name__, e)
    row["seconds"] = time.monotonic() - t0
    return row
