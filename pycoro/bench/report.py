"""The human side of `python -m pycoro bench`: the machine description, the
table (medians, the judged statistic with its interval, target, verdict)
and the notes under it (why a row is inconclusive, noisy rows, the
baseline's modes, errors and skips).

Owns: machine_info(), format_table(), print_report().  May call: stats.
"""
import os
import platform
import sys

from . import stats


def loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


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
        "loadavg": loadavg(),
    }


def fmt(v, unit):
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


def judged_text(row):
    """The judged statistic with its interval: '0.216 [0.205-0.231]'."""
    v = row.get("value")
    if v is None:
        return "-"
    one = (lambda x: "%.3f" % x) if row["kind"] == "ratio" else (lambda x: fmt(x, row["unit"]))
    lo, hi = row.get("spread") or (None, None)
    if lo is None or lo == hi:
        return one(v)
    return "%s [%s-%s]" % (one(v), one(lo), one(hi))


def _target_text(row):
    t = row["target"]
    if row["kind"] == "works":
        return "works"
    if t is None:
        return "-"
    if row["kind"] == "ratio":
        return "<= %.2f" % t
    return "<= %g%s" % (t, "x" if row["unit"] == "x" else " " + row["unit"])


STATUS = {"pass": "PASS", "fail": "FAIL", "error": "ERROR"}


def _notes(report):
    out = []
    for r in report["measures"]:
        if r["error"]:
            out.append("%s: %s: %s" % (r["id"], r["status"], r["error"]))
        if r.get("note"):
            out.append("%s: %s" % (r["id"], r["note"]))
        if r.get("noise") is not None and r["noise"] >= stats.NOISY and r["status"] != "error":
            out.append("%s: noisy: the std dev of its %d replicates is %.0f%% of their mean"
                       % (r["id"], len(r["samples"].get("judged", [])), 100 * r["noise"]))
        m = r.get("baseline_modes")
        base = (r.get("detail") or {}).get("other") or report["baseline"] or "baseline"
        if m:
            f = lambda xs: "%s..%s" % (fmt(xs[0], r["unit"]), fmt(xs[-1], r["unit"]))  # noqa: E731
            out.append("%s: %s's processes fall in two groups, %d at %s and %d at %s: %s is "
                       "judged against the faster" % (r["id"], base, len(m["better"]), f(m["better"]),
                                                      len(m["worse"]), f(m["worse"]), report["subject"]))
    return out


def format_table(report):
    subj, base = report["subject"], report["baseline"] or "greenlet"
    # a row whose baseline is another program (the net echo rows: detail "other")
    # names it in its cell, and the header says so
    peer = lambda r: (r.get("detail") or {}).get("other")  # noqa: E731
    named = any(peer(r) for r in report["measures"])
    head = ["measure", subj + " (median)", base + (" or as named (median)" if named else " (median)"),
            "judged [interval]", "target", "result"]
    rows = []
    for r in report["measures"]:
        bcell = fmt(r["baseline"], r["unit"])
        if peer(r) and r["baseline"] is not None:
            bcell += " (%s)" % peer(r)
        rows.append([r["title"], fmt(r["subject"], r["unit"]), bcell,
                     judged_text(r), _target_text(r), STATUS.get(r["status"], r["status"])])
    widths = [max(len(str(x[i])) for x in rows + [head]) for i in range(len(head))]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out), _notes(report)


def _noisy_machine(report):
    """pyperf-style warning: why the verdicts of this run deserve suspicion."""
    m = report["machine"]
    why = []
    cores = m.get("cores") or 1
    for when, la in (("before", m.get("loadavg_before")), ("after", m.get("loadavg"))):
        if la and la[0] > 0.75 * cores:
            why.append("load average %s the run %.2f on %d cores" % (when, la[0], cores))
    judged = [r for r in report["measures"] if r.get("noise") is not None]
    noisy = [r for r in judged if r["noise"] >= stats.NOISY]
    if judged and len(noisy) * 3 >= len(judged):
        why.append("%d of %d rows have a std dev >= %.0f%% of their mean"
                   % (len(noisy), len(judged), 100 * stats.NOISY))
    return why


def _live_points(stream, report, d):
    """Per size: the median over rounds of each round's median."""
    def per_size(rounds):
        by = {}
        for pts in rounds:
            for p in pts:
                by.setdefault(p["n"], []).append(stats.median(p["samples"]))
        return {n: stats.median(v) for n, v in by.items()}
    sp = per_size(d["subject_points"])
    bp = per_size(d.get("baseline_points", []))
    stream.write("\nswitch ns (round-robin over %d of N live fibers; median of %d rounds):\n"
                 % (d["hot"], len(d["subject_points"])))
    stream.write("  %12s  %10s  %10s\n" % ("N", report["subject"], report["baseline"] or ""))
    for n, v in sorted(sp.items()):
        stream.write("  %12s  %10.1f  %10s\n" % (format(n, ","), v,
                                                 "%.1f" % bp[n] if n in bp else "-"))


def _core_variants(stream, v):
    stream.write("\nraw C core switch, medians (ns per switch):\n"
                 "  %6.1f  default: each fiber keeps its own FP environment (the row above)\n"
                 "  %6.1f  FP environment shared by both fibers (PC_FIBER_SHARE_FPENV):\n"
                 "          no MXCSR read (microcoded: ~4.5 ns in a loop of its own on\n"
                 "          AMD EPYC; the switch overlaps most of it)\n"
                 "  %6.1f  default, switched from two different call sites: each return\n"
                 "          is mispredicted (the shape of the caller, not of the switch)\n"
                 "  %6.1f  floor: a bare register swap between two stacks, nothing copied\n"
                 "  %6.1f  floor, also reading the FP control state (tests/core/floor.S)\n"
                 % (v["default"], v["shared_fpenv"], v["two_sites"], v["floor"], v["floor_fp"]))


def print_report(report, stream):
    m = report["machine"]
    stream.write("pycoro bench%s: %s vs %s\n" % (" --quick" if report["quick"] else "",
                                                 report["subject"], report["baseline"] or "(no baseline)"))
    stream.write("CPU: %s (%s logical cores), Python %s\n" % (m["cpu"], m["cores"], m["python"]))
    if m.get("loadavg"):
        stream.write("load average (1 min) before/after: %s / %s on %s cores\n" % (
            m["loadavg_before"][0] if m.get("loadavg_before") else "?", m["loadavg"][0], m["cores"]))
    stream.write("versions: %s\n\n" % ", ".join("%s %s" % kv for kv in report["versions"].items()))
    table, notes = format_table(report)
    stream.write(table + "\n")
    stream.write("  [interval]: %d%% confidence interval of the median over fresh processes "
                 "(order statistics; with 3-5 replicates it is min..max, 75-94%%). PASS/FAIL "
                 "only when the whole interval meets/misses the target.\n"
                 % round(100 * stats.CONFIDENCE))
    for n in notes:
        stream.write("  note: " + n + "\n")
    if report.get("baseline_missing"):
        stream.write("\n" + report["baseline_missing"] + "\n")
    for r in report["measures"]:
        d = r["detail"]
        if r["id"] == "live_flat" and d.get("subject_points"):
            _live_points(stream, report, d)
        if r["id"] == "core_switch" and d.get("variants"):
            _core_variants(stream, d["variants"])
    why = _noisy_machine(report)
    if why:
        stream.write("\nWARNING: this machine was noisy, so expect inconclusive rows: %s. Rerun "
                     "on a quiet machine (or compare two runs with --compare).\n" % "; ".join(why))
    c = report["counts"]
    # (worded so that no CI log reader mistakes it for a test runner's summary)
    stream.write("\ntargets: %d met, %d missed, %d inconclusive, %d measure errors, %d other "
                 "(of %d measures)\n" % (c["pass"], c["fail"], c["inconclusive"], c["error"],
                                         c["other"], len(report["measures"])))
