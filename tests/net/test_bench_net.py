"""The echo benchmark's tooling (pycoro/bench/net.py): the C load generator
is built and drives a server to the end; the bench table names each net
row's real baseline instead of the default one."""
import shutil

import pytest

from pycoro.bench import net as _bench_net, report as _report


def test_load_generator_is_built_and_counts_every_round_trip():
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler")
    exe = _bench_net.loadgen_path()
    assert exe == _bench_net.loadgen_path()   # cached by source hash
    ns = _bench_net.sample("pycoro", 64, 2000, conns=10)
    assert ns > 0


def test_net_rows_name_their_baseline_in_the_table():
    def row(rid, detail):
        return {"id": rid, "title": rid, "unit": "ns", "subject": 10.0, "baseline": 20.0, "ratio": 0.5,
                "target": 1.0, "kind": "ratio", "status": "pass", "error": None, "detail": detail,
                "judged": 0.5, "interval": [0.4, 0.6], "samples": {}, "noise": None}
    report = {"subject": "pycoro", "baseline": "greenlet",
              "measures": [row("switch", {}), row("net_echo_64_uvloop", {"other": "uvloop"})]}
    table, _ = _report.format_table(report)
    lines = table.splitlines()
    assert "greenlet or as named (median)" in lines[0]
    echo = next(line for line in lines if line.startswith("| net_echo_64_uvloop"))
    assert "20.0 ns (uvloop)" in echo
    switch = next(line for line in lines if line.startswith("| switch"))
    assert "(uvloop)" not in switch and "20.0 ns" in switch


def test_compare_prints_one_line_per_implementation_and_size():
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler")
    import io
    out = io.StringIO()
    _bench_net.compare(["asyncio"], [64, 4096], 1, 500, out=out)
    lines = out.getvalue().splitlines()
    assert [line.split()[:3] for line in lines] == [
        ["64", "B", "pycoro"], ["64", "B", "asyncio"], ["4096", "B", "pycoro"], ["4096", "B", "asyncio"]]
    assert "pycoro/it req/s (paired)" in lines[1] and "req/s" in lines[0]
