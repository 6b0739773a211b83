"""`python -m pycoro bench` as a tool: arguments, JSON shape, error and
missing-dependency paths.  Correctness only: no timing is ever asserted
(these machines are noisy), and every run uses tiny sizes."""
import json
import os
import statistics
import subprocess
import sys

import pytest

from pycoro import _bench
from tests.platform_support import needs_subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {
    "PYCORO_BENCH_SCALE": "0.002",
    "PYCORO_BENCH_MAX_LIVE": "1000",
    "PYCORO_BENCH_REPEAT": "1",
}
IDS = ["roundtrip", "create_run_free", "suspended_100k", "rss_depth5", "switch_reentry",
       "live_flat", "live_1m", "core_switch", "gevent_sleep0", "gevent_spawn_join", "gevent_echo",
       "net_echo_64_asyncio", "net_echo_64_gevent", "net_echo_64_uvloop", "net_echo_64_trio",
       "net_echo_4k_asyncio", "net_echo_4k_gevent", "net_echo_4k_uvloop", "net_echo_4k_trio", "net_idle"]
STATUSES = {"pass", "fail", "error", "skipped", "no baseline", "inconclusive"}


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
    code = ("import sys, pycoro; bad = [m for m in ('greenlet', 'matplotlib', 'cffi', 'pycoro._bench') "
            "if m in sys.modules]; print(bad)")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"


@needs_subprocess
def test_quick_json_has_every_measure():
    p = _run(["bench", "--quick", "--json"])
    assert p.returncode == 0, p.stdout + p.stderr
    report = json.loads(p.stdout)
    assert [m["id"] for m in report["measures"]] == IDS
    assert report["subject"] == "pycoro"
    assert report["quick"] is True
    assert report["machine"]["python"] == sys.version.replace("\n", " ")
    have_greenlet = report["baseline"] == "greenlet"
    for m in report["measures"]:
        assert m["status"] in STATUSES, m
        assert m["status"] != "error", m
        if m["status"] == "skipped":
            # only the cffi core (no compiler / checkout), the gevent
            # rows (gevent not installed) and the echo rows of servers that
            # are not installed (uvloop, trio) may be unavailable
            assert (m["id"] == "core_switch" or m["id"].startswith("gevent_")
                    or m["id"].startswith("net_echo_")), m
            assert m["error"], m
            continue
        assert isinstance(m["subject"], (int, float)), m
        # tiny sizes: an RSS delta may round to whole pages, even to 0
        assert m["subject"] >= 0 if m["unit"] in ("B", "MiB") else m["subject"] > 0, m
        if m["kind"] == "ratio" and have_greenlet:
            if not m["baseline"]:
                assert m["status"] == "inconclusive"
                continue
            d = m["detail"]
            if d.get("baseline_samples"):  # paired rounds: median of the per-round ratios
                pairs = sorted(x / y for x, y in zip(d["subject_samples"], d["baseline_samples"]))
                assert m["ratio"] == pytest.approx(statistics.median(pairs))
            else:
                assert m["ratio"] == pytest.approx(m["subject"] / m["baseline"])
            assert m["status"] == ("pass" if m["ratio"] <= m["target"] else "fail")
    c = report["counts"]
    assert sum(c.values()) == len(IDS)
    # the human table went to stderr, with the closing count line
    assert "| measure" in p.stderr
    assert "targets: " in p.stderr and " met, " in p.stderr and " missed, " in p.stderr


@needs_subprocess
def test_missing_greenlet_is_said_not_hidden(tmp_path):
    p = _run(["bench", "--quick", "--json", "--only", "roundtrip,live_flat"],
             shadow_dir=_shadow(tmp_path, "greenlet"))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "greenlet is not installed" in p.stderr
    report = json.loads(p.stdout)
    assert report["baseline"] is None
    assert "greenlet is not installed" in report["baseline_missing"]
    rt, flat = report["measures"]
    assert rt["status"] == "no baseline" and rt["ratio"] is None and rt["subject"] > 0
    assert flat["status"] in ("pass", "fail") and flat["baseline"] is None


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
    p = _run(["bench", "--quick", "--json", "--only", "roundtrip", "--plot", str(out)])
    assert p.returncode == 0, p.stdout + p.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads(p.stdout)
    curves = report["depth_curves"]
    n = len(curves["depths"])
    for role in curves["names"]:
        assert len(curves["roundtrip_ns"][role]) == n
        assert len(curves["rss_per_fiber"][role]) == n


@needs_subprocess
def test_only_unknown_and_list():
    p = _run(["bench", "--only", "nope"])
    assert p.returncode != 0 and "unknown measure" in p.stderr
    p = _run(["bench", "--list"])
    assert p.returncode == 0
    assert [line.split()[0] for line in p.stdout.splitlines()] == IDS


# ---- in process: a failing measure is reported, never hidden ---------------

def _args(*argv):
    parser = __import__("argparse").ArgumentParser()
    _bench.add_arguments(parser)
    return parser.parse_args(["--quick", "--no-progress"] + list(argv))


def _fake_measures():
    def boom(ctx):
        raise RuntimeError("fiber exploded")

    def slow(ctx):
        return {"subject": 300.0, "baseline": 100.0}

    def fast(ctx):
        return {"subject": 10.0, "baseline": 100.0}

    def skipped(ctx):
        return {"skipped": "no C compiler"}

    M = _bench.Measure
    return [
        M("boom", "raises", "ns", 0.5, "ratio", 1, boom),
        M("slow", "misses its target", "ns", 0.5, "ratio", 1, slow),
        M("fast", "meets its target", "ns", 0.5, "ratio", 1, fast),
        M("skip", "cannot run here", "ns", 10, "value", 1, skipped),
    ]


def test_failing_measures_are_reported(monkeypatch, capsys):
    monkeypatch.setenv("PYCORO_BENCH_SUBJECT", "pycoro")
    report, code = _bench.run(_args(), _fake_measures())
    rows = {r["id"]: r for r in report["measures"]}
    assert rows["boom"]["status"] == "error" and "fiber exploded" in rows["boom"]["error"]
    expected_slow = "fail" if report["baseline"] else "no baseline"
    assert rows["slow"]["status"] == expected_slow
    assert rows["skip"]["status"] == "skipped" and rows["skip"]["error"] == "no C compiler"
    if report["baseline"]:
        assert rows["slow"]["ratio"] == pytest.approx(3.0)
        assert rows["fast"]["status"] == "pass"
    assert code == 1  # an error always fails the run
    table, notes = _bench.format_table(report)
    assert "ERROR" in table and any("fiber exploded" in n for n in notes)
    assert any("no C compiler" in n for n in notes)


def test_strict_fails_on_a_missed_target(monkeypatch):
    pytest.importorskip("greenlet")
    ms = [m for m in _fake_measures() if m.id in ("slow", "fast")]
    report, code = _bench.run(_args(), ms)
    assert code == 0  # a missed target alone is reported, not an exit failure
    report, code = _bench.run(_args("--strict"), ms)
    assert code == 1
    assert report["counts"] == {"pass": 1, "fail": 1, "error": 0, "other": 0}
