"""The bench's statistics: how a list of replicates (one value per fresh
worker process, or per round of a paired ratio) becomes a median with its
spread, a verdict against a target, a ratio against the baseline's better
mode, and a change between two runs.

The spread is a distribution-free confidence interval of the median, from
order statistics: [x_(j), x_(n+1-j)] covers the true median with
probability 1 - 2 P(Binomial(n, 1/2) < j).  A verdict compares the whole
interval with the target:

    pass          the whole interval meets the target
    fail          the whole interval misses it
    inconclusive  the interval straddles it (or there are fewer than
                  MIN_REPLICATES replicates): said with the numbers

so one slow sample can widen the interval, never turn it into a FAIL.
The method around it (after pyperf's): pycoro/bench/__init__.py.

Owns: median_interval, judge, better_mode, paired_ratios, flatness, change.
Pure standard library, no I/O (tests/test_bench_cli.py drives it with
synthetic samples).  May call: nothing of pycoro.
"""
import math
import random
import statistics

CONFIDENCE = 0.95
MIN_REPLICATES = 3          # fewer: no verdict, whatever the numbers say
MODE_GAP = 1.15             # a jump of 15 % between sorted process values splits modes
NOISY = 0.10                # pyperf's warning: std dev >= 10 % of the mean
BOOTSTRAP = 2000


def median(xs):
    return statistics.median(xs) if xs else None


def median_interval(xs, confidence=CONFIDENCE):
    """
(lo, hi, coverage): the narrowest order-statistic interval around the
    median whose coverage is at least `confidence`; with too few values for
    that, (min, max) and the coverage it really has (n = 3: 75 %)."""
    v = sorted(xs)
    n = len(v)
    if n == 0:
        return None, None, 0.0
    if n == 1:
        return v[0], v[0], 0.0
    # P(B <= k), B ~ Binomial(n, 1/2)
    cdf, acc = [], 0
    for k in range(n + 1):
        acc += math.comb(n, k)
        cdf.append(acc / 2 ** n)
    j = 1
    while j + 1 <= (n + 1) // 2 and 1 - 2 * cdf[j] >= confidence:
        j += 1
    return v[j - 1], v[n - j], 1 - 2 * cdf[j - 1]


def noise(xs):
    """Relative standard deviation (std dev / mean), or None for < 2 values."""
    if len(xs) < 2:
        return None
    mean = statistics.fmean(xs)
    return statistics.stdev(xs) / mean if mean else None


def judge(values, target, fmt=lambda x: "%.3g" % x):
    """The verdict of `values` (lower is better) against `target`: a dict
    with status, value (the median), spread [lo, hi], coverage, n, noise and,
    unless it passed or failed cleanly, `why`."""
    lo, hi, cov = median_interval(values)
    out = {"value": median(values), "spread": [lo, hi], "coverage": cov, "n": len(values),
           "noise": noise(values), "status": "inconclusive", "why": None}
    if not values:
        out["why"] = "no replicates"
        return out
    if target is None:
        out["status"] = "measured"
        return out
    if len(values) < MIN_REPLICATES:
        out["why"] = "%d replicate(s) (a verdict needs %d): median %s" % (
            len(values), MIN_REPLICATES, fmt(out["value"]))
    elif hi <= target:
        out["status"] = "pass"
    elif lo > target:
        out["status"] = "fail"
    else:
        out["why"] = "median %s, %.0f%% interval %s..%s straddles the target %s" % (
            fmt(out["value"]), 100 * cov, fmt(lo), fmt(hi), fmt(target))
    return out


def better_mode(values, gap=MODE_GAP, min_members=2):
    """Indices of the values in the lower (better) of two modes.  The values
    are split at the largest jump between neighbours once sorted, if that
    jump is at least `gap` (x1.15) and the lower side has `min_members`;
    otherwise all values are one mode and every index is returned."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    if len(order) < min_members + 1:
        return order
    best, at = 1.0, None
    for k in range(len(order) - 1):
        a, b = values[order[k]], values[order[k + 1]]
        if a > 0 and b / a > best:
            best, at = b / a, k
    if at is None or best < gap or at + 1 < min_members:
        return order
    return sorted(order[:at + 1])


def paired_ratios(subject, baseline, keep=None):
    """subject[r] / baseline[r] for each round r in `keep` (all rounds by
    default): the two samples of a round ran back to back, on one machine
    state."""
    rounds = range(len(baseline)) if keep is None else keep
    return [subject[r] / baseline[r] for r in rounds if baseline[r] > 0]


def flatness(points):
    """max/min of the per-size medians of one round ({size: [samples]})."""
    meds = [median(v) for v in points.values() if v]
    return max(meds) / min(meds) if meds and min(meds) > 0 else None


def change(old, new, confidence=CONFIDENCE, resamples=BOOTSTRAP, seed=19):
    """new against old (lower is better): median(new) / median(old) with a
    bootstrap interval; verdict faster / slower / no significant change."""
    out = {"old": median(old), "new": median(new), "ratio": None, "spread": [None, None],
           "verdict": "no significant change"}
    if not old or not new or out["old"] <= 0:
        out["verdict"] = "not comparable (no samples)"
        return out
    out["ratio"] = out["new"] / out["old"]
    if len(old) < MIN_REPLICATES or len(new) < MIN_REPLICATES:
        out["verdict"] = "too few samples (%d old, %d new; %d each needed)" % (
            len(old), len(new), MIN_REPLICATES)
        return out
    rng = random.Random(seed)
    boot = []
    for _ in range(resamples):
        o = median(rng.choices(old, k=len(old)))
        if o > 0:
            boot.append(median(rng.choices(new, k=len(new))) / o)
    boot.sort()
    tail = (1 - confidence) / 2
    lo = boot[int(tail * (len(boot) - 1))]
    hi = boot[int(math.ceil((1 - tail) * (len(boot) - 1)))]
    out["spread"] = [lo, hi]
    if hi < 1:
        out["verdict"] = "faster"
    elif lo > 1:
        out["verdict"] = "slower"
    return out
