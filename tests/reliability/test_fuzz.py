"""Runs fuzz_api.py in a subprocess: a crash (signal, abort) is a test
failure with the child's output; the seed and the number of cases are
printed.  The seed is PYCORO_FUZZ_SEED (default 0): the run is the same
every time, and a failure is reproduced by rerunning with its seed.
fuzz_ops.py (the long model-checked fuzz of .ci/lanes/fuzz.sh) gets a
short run here too."""
import os
import re
import subprocess
import sys

from tests.platform_support import SCALE, needs_subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOAK = os.environ.get("PYCORO_SOAK", "") not in ("", "0")
SEED = os.environ.get("PYCORO_FUZZ_SEED", "0")


def run_fuzz_api(examples, seed=SEED):
    env = dict(os.environ, FUZZ_EXAMPLES=str(examples), PYCORO_FUZZ_SEED=str(seed),
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "reliability", "fuzz_api.py")],
                       capture_output=True, text=True, env=env, timeout=1200)
    assert p.returncode == 0, (f"exit status {p.returncode} (PYCORO_FUZZ_SEED={seed} "
                               f"FUZZ_EXAMPLES={examples} reproduces)\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}")
    assert f"fuzz seed: {seed} " in p.stdout, p.stdout
    cases = re.search(r"fuzz cases: (\d+)", p.stdout)
    digest = re.search(r"fuzz digest: (\w+)", p.stdout)
    assert cases and digest, p.stdout
    return int(cases.group(1)), digest.group(1)


@needs_subprocess
def test_fuzz_public_api_in_a_subprocess():
    examples = 20_000 if SOAK else max(100, int(600 * SCALE))
    cases, digest = run_fuzz_api(examples)
    assert cases >= examples
    print(f"\nfuzz seed {SEED}: {cases} cases ({examples} examples), digest {digest}")


@needs_subprocess
def test_fuzz_is_reproducible_from_its_seed():
    # the same seed draws the same cases; another seed draws others
    a = run_fuzz_api(30, seed=7)
    assert run_fuzz_api(30, seed=7) == a
    assert run_fuzz_api(30, seed=8)[1] != a[1]


@needs_subprocess
def test_fuzz_ops_short_run():
    ops = max(2000, int(20_000 * SCALE))
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-m", "tests.reliability.fuzz_ops", "--ops", str(ops),
                        "--seed", SEED], capture_output=True, text=True, env=env, timeout=1200,
                       cwd=ROOT)
    assert p.returncode == 0, f"exit status {p.returncode}\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}"
    m = re.search(r"fuzz_ops: seed \d+: (\d+) operations", p.stdout)
    assert m and int(m.group(1)) >= ops, p.stdout
    print("\n" + m.group(0))
