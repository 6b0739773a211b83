"""`python -m pycoro bench` as a tool: arguments, JSON shape, error and
missing-dependency paths.  Correctness only: no timing is ever asserted
(these machines are noisy), and every run uses tiny sizes."""
import json
import os
import statistics
import subprocess
import sys

import pytest

from pycoro.bench import cli as bench_cli
from pycoro.bench import compare, rows_multihub, runner, stats
from pycoro.bench import report as report_mod
from tests.platform_support import needs_subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {
    "PYCORO_BENCH_SCALE": "0.002",
    "PYCORO_BENCH_MAX_LIVE": "1000",
    "PYCORO_BENCH_REPEAT": "1",
}
IDS = ["roundtrip", "create_run_free", "suspended_100k", "rss_depth5", "rss_depth20",
       "rss_depth50", "switch_reentry",
       "live_flat", "live_1m", "core_switch", "gevent_sleep0", "gevent_spawn_join", "gevent_echo",
       "net_echo_64_asyncio", "net_echo_64_gevent", "net_echo_64_uvloop", "net_echo_64_trio",
       "net_echo_4k_asyncio", "net_echo_4k_gevent", "net_echo_4k_uvloop", "net_echo_4k_trio", "net_idle",
       "mh_fanout", "mh_fanout_threads", "mh_fanout_pool", "mh_pingpong_queue",
       "mh_pingpong_asyncio", "mh_stream_queue", "mh_stream_asyncio", "ft_switch_threads"]
STATUSES = {"pass", "fail", "error", "skipped", "no baseline", "inconclusive", "measured", "n/a"}



def _env(shadow_dir=None):
    env = dict(os.environ, **TINY)
    env.pop("PYCORO_BENCH_SUBJECT", None)
    # shadow first: a module there hides the installed one
    path = ([shadow_dir] if shadow_dir else []) + [ROOT]
    if env.get("PYTHONPATH"):
        path.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(path)
    return env


def _run(args, shadow_dir=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "pycoro"] + args, cwd=ROOT, env=_env(shadow_dir),
                          capture_output=True, text=True, timeout=timeout)


def _shadow(tmp_path, *modules):
    """A directory whose modules make `import NAME` fail like a missing package."""
    d = tmp_path / "shadow"
    d.mkdir(exist_ok=True)
    for name in modules:
        (d / (name + ".py")).write_text("raise ImportError(%r)\n" % ("no module named %s (hidden by a test)" % name))
    return str(d)


@needs_subprocess
def test_help_lists_bench():
    p = _run(["--help"])
    assert p.returncode == 0, p.stderr
    assert "bench" in p.stdout
    p = _run(["bench", "--help"])
    assert p.returncode == 0, p.stderr
    for flag in ("--quick", "--json", "--plot"):
        assert flag in p.stdout


@needs_subprocess
def test_import_pycoro_pulls_in_no_bench_dependency():
    code = ("import sys, pycoro; bad = [m for m in ('greenlet', 'matplotlib', 'cffi', 'pycoro.bench') "
            "if m in sys.modules]; print(bad)")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"


@needs_subprocess
def test_quick_json_has_every_measure(tmp_path):
    out = tmp_path / "r.json"
    p = _run(["bench", "--quick", "--json", str(out)])
    assert p.returncode == 0, p.stdout + p.stderr
    report = json.loads(out.read_text())
    assert [m["id"] for m in report["measures"]] == IDS
    assert report["subject"] == "pycoro"
    assert report["quick"] is True
    assert report["machine"]["python"] == sys.version.replace("\n", " ")
    have_greenlet = report["baseline"] == "greenlet"
    for m in report["measures"]:
        assert m["status"] in STATUSES, m
        assert m["status"] != "error", m
        if m["status"] == "skipped":
            # only the gevent rows (gevent not installed) and the echo rows
            # of servers that are not installed (uvloop, trio) may be
            # unavailable; the raw core row only without cffi or a compiler
            assert (m["id"] == "core_switch" or m["id"].startswith("gevent_")
                    or m["id"].startswith("net_echo_")), m
            assert m["error"], m
            continue
        if m["status"] == "n/a":
            # only the free-threaded row, on a GIL build
            assert m["id"] == "ft_switch_threads" and "free-threaded" in m["error"], m
            assert not rows_multihub.free_threaded()
            continue
        assert isinstance(m["subject"], (int, float)), m
        # tiny sizes: an RSS delta may round to whole pages, even to 0
        assert m["subject"] >= 0 if m["unit"] in ("B", "MiB") else m["subject"] > 0, m
        judged = m["samples"]["judged"]
        if m["status"] != "no baseline":
            assert m["value"] == pytest.approx(statistics.median(judged)), m
        if m["kind"] == "ratio" and (have_greenlet or m["id"].startswith("mh_")) and m["baseline"]:
            # the judged replicates: the per-round ratios of the rounds whose
            # baseline process is in the baseline's better mode
            s, b = m["samples"]["subject"], m["samples"]["baseline"]
            keep = m["samples"]["better_mode"]
            assert judged == pytest.approx([s[i] / b[i] for i in keep])
            assert m["ratio"] == m["value"]
        if m["kind"] != "works" and m["target"] is not None and m["status"] != "no baseline":
            # PYCORO_BENCH_REPEAT=1: one replicate never gives a verdict
            assert m["status"] == "inconclusive" and "replicate" in m["error"], m
    c = report["counts"]
    assert sum(c.values()) == len(IDS)
    assert "| measure" in p.stdout
    assert "targets: " in p.stdout and " met, " in p.stdout and " inconclusive, " in p.stdout


@needs_subprocess
def test_missing_greenlet_is_said_not_hidden(tmp_path):
    p = _run(["bench", "--quick", "--json", "-", "--only", "roundtrip,live_flat"],
             shadow_dir=_shadow(tmp_path, "greenlet"))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "greenlet is not installed" in p.stderr
    report = json.loads(p.stdout)
    assert report["baseline"] is None
    assert "greenlet is not installed" in report["baseline_missing"]
    rt, flat = report["measures"]
    assert rt["status"] == "no baseline" and rt["ratio"] is None and rt["subject"] > 0
    assert flat["status"] == "inconclusive" and flat["baseline"] is None


@needs_subprocess
def test_plot_without_matplotlib_is_a_clear_error(tmp_path):
    p = _run(["bench", "--quick", "--plot", str(tmp_path / "x.png")],
             shadow_dir=_shadow(tmp_path, "matplotlib"))
    assert p.returncode != 0
    assert "matplotlib" in p.stderr and "pip install" in p.stderr
    assert not (tmp_path / "x.png").exists()


@needs_subprocess
def test_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "bench.png"
    p = _run(["bench", "--quick", "--json", "-", "--only", "rss_depth20", "--plot", str(out)])
    assert p.returncode == 0, p.stdout + p.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads(p.stdout)
    curves = report["depth_curves"]
    n = len(curves["depths"])
    for key in ("roundtrip_ns", "rss_per_fiber"):
        assert len(curves[key]) == n
        for point in curves[key]:
            assert set(point) == set(curves["names"])
            for c in point.values():
                lo, hi = c["interval"]
                assert lo <= c["median"] <= hi


@needs_subprocess
def test_only_unknown_and_list():
    p = _run(["bench", "--only", "nope"])
    assert p.returncode != 0 and "unknown measure" in p.stderr
    p = _run(["bench", "--list"])
    assert p.returncode == 0
    assert [line.split()[0] for line in p.stdout.splitlines()] == IDS


def test_list_into_a_pipe_closed_early_ends_quietly():
    # `python -m pycoro bench --list | head -1`: the reader is gone before
    # the list is written; the command stops without a BrokenPipeError trace
    # (the read end is closed before the child has imported anything)
    p = subprocess.Popen([sys.executable, "-m", "pycoro", "bench", "--list"], cwd=ROOT, env=_env(None),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(timeout=60) == 1, err
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


# ---- in process: a failing measure is reported, never hidden ---------------

def _args(*argv):
    parser = __import__("argparse").ArgumentParser()
    bench_cli.add_arguments(parser)
    return parser.parse_args(["--quick", "--no-progress"] + list(argv))


def _fake_measures():
    def boom(ctx):
        raise RuntimeError("fiber exploded")

    def slow(ctx):
        return {"subject": [300.0, 310.0, 290.0], "baseline": [100.0] * 3 if ctx.baseline else None}

    def fast(ctx):
        return {"subject": [10.0, 11.0, 9.0], "baseline": [100.0] * 3 if ctx.baseline else None}

    def skipped(ctx):
        return {"skipped": "no C compiler"}

    M = runner.Measure
    return [
        M("boom", "raises", "ns", 0.5, "ratio", 1, boom),
        M("slow", "misses its target", "ns", 0.5, "ratio", 1, slow),
        M("fast", "meets its target", "ns", 0.5, "ratio", 1, fast),
        M("skip", "cannot run here", "ns", 10, "value", 1, skipped),
    ]


def test_failing_measures_are_reported(monkeypatch, capsys):
    monkeypatch.setenv("PYCORO_BENCH_SUBJECT", "pycoro")
    report, code = bench_cli.run(_args(), _fake_measures())
    rows = {r["id"]: r for r in report["measures"]}
    assert rows["boom"]["status"] == "error" and "fiber exploded" in rows["boom"]["error"]
    expected_slow = "fail" if report["baseline"] else "no baseline"
    assert rows["slow"]["status"] == expected_slow
    assert rows["skip"]["status"] == "skipped" and rows["skip"]["error"] == "no C compiler"
    if report["baseline"]:
        assert rows["slow"]["ratio"] == pytest.approx(3.0)
        assert rows["fast"]["status"] == "pass"
    assert code == 1  # an error always fails the run
    table, notes = report_mod.format_table(report)
    assert "ERROR" in table and any("fiber exploded" in n for n in notes)
    assert any("no C compiler" in n for n in notes)


def test_strict_fails_on_a_missed_target(monkeypatch):
    pytest.importorskip("greenlet")
    ms = [m for m in _fake_measures() if m.id in ("slow", "fast")]
    report, code = bench_cli.run(_args(), ms)
    assert code == 0  # a missed target alone is reported, not an exit failure
    report, code = bench_cli.run(_args("--strict"), ms)
    assert code == 1
    assert report["counts"] == {"pass": 1, "fail": 1, "inconclusive": 0, "error": 0, "other": 0}


# ---- the verdicts, on synthetic replicates ---------------------------------

def test_median_interval_is_the_order_statistic_interval():
    xs = list(range(1, 26))                     # 25 replicates
    lo, hi, cov = stats.median_interval(xs[::-1])
    # [x_(8), x_(18)]: 1 - 2 P(Binomial(25, 1/2) <= 7) = 0.957
    assert (lo, hi) == (8, 18) and cov == pytest.approx(0.9567, abs=1e-4)
    lo, hi, cov = stats.median_interval([3.0, 1.0, 2.0])
    assert (lo, hi) == (1.0, 3.0) and cov == pytest.approx(0.75)
    assert stats.median_interval([5.0]) == (5.0, 5.0, 0.0)


def test_noisy_pass_one_slow_sample_does_not_fail():
    # 11 rounds near 0.21 against a 0.25 target, one round preempted (0.60)
    ratios = [0.20, 0.21, 0.22, 0.21, 0.20, 0.60, 0.21, 0.22, 0.20, 0.21, 0.23]
    v = stats.judge(ratios, 0.25)
    assert v["status"] == "pass", v
    assert v["spread"][1] <= 0.25 and max(ratios) > 0.25
    assert v["noise"] > stats.NOISY             # and the table notes it as noisy


def test_clear_fail():
    v = stats.judge([11.0, 11.4, 10.9, 11.2, 11.6], 10.0)
    assert v["status"] == "fail" and v["spread"][0] > 10.0


def test_inconclusive_says_the_numbers():
    v = stats.judge([9.2, 9.8, 10.4, 10.9, 11.3], 10.0, lambda x: "%.1f ns" % x)
    assert v["status"] == "inconclusive"
    assert v["why"] == "median 10.4 ns, 94% interval 9.2 ns..11.3 ns straddles the target 10.0 ns"


def test_one_noisy_sample_alone_is_never_a_verdict():
    # the raw switch that printed FAIL at 11.3 ns against 10 ns from one sample
    for values in ([11.3], [11.3, 11.5]):
        v = stats.judge(values, 10.0)
        assert v["status"] == "inconclusive" and "replicate" in v["why"]


def test_flatness_is_judged_per_round():
    # one noisy size in one round: that round's max/min is high, the row is not a FAIL
    steady = {100: [130, 131, 129], 10_000: [136, 137, 135], 1_000_000: [140, 141, 139]}
    noisy = {**steady, 10_000: [220, 222, 221]}
    rounds = [stats.flatness(steady), stats.flatness(noisy), stats.flatness(steady)]
    assert rounds[0] == pytest.approx(140 / 130) and rounds[1] == pytest.approx(221 / 130)
    assert stats.judge(rounds, 1.5)["status"] == "inconclusive"
    # from 9 replicates on, the 95% interval leaves out the extreme on each side
    assert stats.judge(rounds + [stats.flatness(steady)] * 6, 1.5)["status"] == "pass"


def test_better_mode_of_a_bimodal_baseline():
    # greenlet: 5 processes near 480 ns, 4 near 780 ns (by where its stack landed)
    b = [480, 781, 478, 790, 485, 775, 482, 779, 490]
    keep = stats.better_mode(b)
    assert sorted(b[i] for i in keep) == [478, 480, 482, 485, 490]
    # unimodal with spread: no split
    assert len(stats.better_mode([400, 420, 410, 430, 415])) == 5
    # one fast process alone is not a mode
    assert len(stats.better_mode([300, 480, 485, 490, 482])) == 5


def test_ratio_row_is_held_against_the_better_mode():
    s = [100.0] * 9
    b = [480, 781, 478, 790, 485, 775, 482, 779, 490]
    m = runner.Measure("rt", "round trip", "ns", 0.25, "ratio", 1, None)
    row = runner.assess(m, {"subject": s, "baseline": b}, {})
    assert row["baseline"] == 482
    assert row["samples"]["judged"] == pytest.approx([100 / x for x in (480, 478, 485, 482, 490)])
    # against all nine (median 490, some rounds at 0.13) it would pass; against
    # the better mode every ratio is > 0.2: still a pass at 0.25, a fail at 0.2
    assert row["status"] == "pass"
    m.target = 0.2
    assert runner.assess(m, {"subject": s, "baseline": b}, {})["status"] == "fail"
    # a row whose baseline is not greenlet (the echo servers) judges every round
    m = runner.Measure("echo", "echo", "ns", 0.25, "ratio", 1, None, modes=False)
    assert len(runner.assess(m, {"subject": s, "baseline": b}, {})["samples"]["judged"]) == 9
    assert "two groups" in report_mod._notes({"baseline": "greenlet", "subject": "pycoro",
                                              "measures": [dict(row, id="rt", unit="ns", error=None)]})[0]


def test_compare_verdicts():
    old = [100.0, 102.0, 99.0, 101.0, 103.0, 100.5, 98.5]
    assert stats.change(old, [x * 0.8 for x in old])["verdict"] == "faster"
    assert stats.change(old, [x * 1.25 for x in old])["verdict"] == "slower"
    same = stats.change(old, [101.0, 99.5, 100.0, 102.5, 98.0, 100.0, 103.0])
    assert same["verdict"] == "no significant change"
    assert same["spread"][0] < 1 < same["spread"][1]
    assert stats.change(old, [50.0])["verdict"].startswith("too few samples")


def _report(ratios):
    return {"measures": [{"id": "roundtrip", "title": "round trip", "kind": "ratio", "unit": "ns",
                          "value": statistics.median(ratios), "samples": {"judged": ratios}}]}


def test_compare_cli(tmp_path):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(_report([0.23, 0.24, 0.22, 0.23, 0.25])))
    new.write_text(json.dumps(_report([0.16, 0.17, 0.16, 0.15, 0.17])))
    args = _args("--compare", str(old), str(new))
    assert bench_cli.command(args) == 0
    rows = compare.compare(json.loads(old.read_text()), json.loads(new.read_text()))
    assert [(r["id"], r["verdict"]) for r in rows] == [("roundtrip", "faster")]
    assert rows[0]["ratio"] == pytest.approx(0.16 / 0.23)


def test_compare_reads_the_first_schema():
    # docs/bench.json predates the verdicts: per-round samples under detail
    row = {"id": "x", "title": "x", "kind": "ratio", "unit": "ns", "value": 0.5,
           "detail": {"subject_samples": [1.0, 2.0], "baseline_samples": [4.0, 4.0]}}
    assert compare.replicates(row) == [0.25, 0.5]


# ---- the multi-hub rows' verdicts, on synthetic worker results -------------

def _mh_ctx():
    from pycoro.bench.sizes import Progress, Sizes
    return runner.Ctx(None, None, Sizes(True), Progress(0, enabled=False))


def _mh_measures(monkeypatch, ft):
    from pycoro.bench.sizes import Sizes
    monkeypatch.setattr(rows_multihub, "free_threaded", lambda: ft)
    return {m.id: m for m in rows_multihub.measures(Sizes(True))}


def _fake_fanout(seconds):
    def run_worker(cmd, config, **kw):
        assert cmd == "mh_fanout"
        return {"s": seconds[config]}
    return run_worker


FANOUT_HALF = {"hubs1": 2.0, "hubs2": 1.0, "threads": 2.1, "processes": 1.1, "serial": 2.0}
FANOUT_GIL = {"hubs1": 2.0, "hubs2": 2.2, "threads": 2.1, "processes": 1.1, "serial": 2.0}


def test_fanout_is_judged_only_when_free_threaded(monkeypatch):
    monkeypatch.setattr(rows_multihub, "run_worker", _fake_fanout(FANOUT_GIL))
    # GIL build: 2 hubs slower than 1 is shown, not a FAIL
    ms = _mh_measures(monkeypatch, False)
    assert ms["mh_fanout"].target is None
    row = runner.run_measure(ms["mh_fanout"], _mh_ctx())
    assert row["status"] == "measured" and row["value"] == pytest.approx(1.1)
    assert "GIL build" in row["note"] and row["error"] is None
    # free-threaded: the same samples miss the 1.7x target ...
    ms = _mh_measures(monkeypatch, True)
    assert ms["mh_fanout"].target == pytest.approx(1 / 1.7)
    row = runner.run_measure(ms["mh_fanout"], _mh_ctx())
    assert row["status"] == "fail" and "note" not in row
    # ... and 2x meets it; the thread and process pools are shown beside it
    monkeypatch.setattr(rows_multihub, "run_worker", _fake_fanout(FANOUT_HALF))
    ctx = _mh_ctx()
    row = runner.run_measure(ms["mh_fanout"], ctx)
    assert row["status"] == "pass" and row["value"] == pytest.approx(0.5)
    assert row["detail"]["speedup_hubs2_over_hubs1"] == pytest.approx(2.0)
    threads = runner.run_measure(ms["mh_fanout_threads"], ctx)
    pool = runner.run_measure(ms["mh_fanout_pool"], ctx)
    assert threads["status"] == pool["status"] == "measured"
    assert threads["value"] == pytest.approx(1 / 2.1) and pool["value"] == pytest.approx(1 / 1.1)
    # one set of processes serves the three rows
    assert len(ctx._fanout["hubs2"]) == ctx.sizes.mh_repeat


def test_cross_hub_rows_must_beat_both_baselines(monkeypatch):
    ns = {"pycoro": 20_000.0, "queue": 30_000.0, "asyncio": 15_000.0}
    monkeypatch.setattr(rows_multihub, "run_worker",
                        lambda cmd, config, n: {"ns": ns[config]})
    ms = _mh_measures(monkeypatch, False)
    ctx = _mh_ctx()
    assert runner.run_measure(ms["mh_pingpong_queue"], ctx)["status"] == "pass"
    row = runner.run_measure(ms["mh_pingpong_asyncio"], ctx)
    assert row["status"] == "fail" and row["value"] == pytest.approx(20 / 15)
    assert runner.run_measure(ms["mh_stream_queue"], ctx)["status"] == "pass"


def _fake_switch(values, greenlet_error=None):
    def run_worker(cmd, impl_name, n, repeat):
        assert cmd == "mh_switch_threads"
        if impl_name == "greenlet" and greenlet_error:
            raise RuntimeError(greenlet_error)
        v = values[impl_name]
        return {"value": v, "one_ns": 100.0, "two_ns": 100.0 * v, "version": "x"}
    return run_worker


def test_switch_threads_row_needs_a_free_threaded_build(monkeypatch):
    monkeypatch.setattr(rows_multihub, "run_worker", _fake_switch({"pycoro": 0.5, "greenlet": 0.5}))
    ms = _mh_measures(monkeypatch, False)
    row = runner.run_measure(ms["ft_switch_threads"], _mh_ctx())
    # not applicable, not skipped: the bench lane rejects skipped rows only
    assert row["status"] == "n/a" and "free-threaded" in row["error"]
    ms = _mh_measures(monkeypatch, True)
    row = runner.run_measure(ms["ft_switch_threads"], _mh_ctx())
    assert row["status"] == "pass" and row["baseline"] == pytest.approx(0.5)
    monkeypatch.setattr(rows_multihub, "run_worker", _fake_switch({"pycoro": 0.9, "greenlet": 0.5}))
    row = runner.run_measure(ms["ft_switch_threads"], _mh_ctx())
    assert row["status"] == "fail" and row["baseline"] == pytest.approx(0.5)
    # greenlet that does not run on this build is said in the row, pycoro still judged
    monkeypatch.setattr(rows_multihub, "run_worker",
                        _fake_switch({"pycoro": 0.52}, greenlet_error="no module greenlet"))
    row = runner.run_measure(ms["ft_switch_threads"], _mh_ctx())
    assert row["status"] == "pass" and row["baseline"] is None
    assert "greenlet did not run" in row["note"] and "no module greenlet" in row["note"]
