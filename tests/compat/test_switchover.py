"""Switching an unchanged program to pycoro: `python -m pycoro.compat run`
and PYCORO_GREENLET=1 through pycoro-greenlet.pth (the .pth installed at
the top of site-packages; here processed with site.addsitedir on the
checkout, where it lies)."""
import os
import subprocess
import sys
import textwrap

from tests.platform_support import needs_subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

APP = """
import subprocess, sys
import greenlet
print("main", __name__, greenlet.__name__, sys.argv[1:])
g = greenlet.greenlet(lambda x: x * 2)
print("switch", g.switch(21))
# a child started the usual way inherits PYCORO_GREENLET; the .pth (here
# from the checkout) turns it into pycoro.compat at start-up
out = subprocess.run([sys.executable, "-c",
                      "import site; site.addsitedir(%r); import greenlet; print(greenlet.__name__)"],
                     capture_output=True, text=True, check=True).stdout.strip()
print("child", out)
""" % ROOT


def run(args, env=None, cwd=None):
    e = dict(os.environ)
    e.pop("PYCORO_GREENLET", None)
    e.update(env or {})
    e["PYTHONPATH"] = ROOT
    return subprocess.run([sys.executable] + args, capture_output=True, text=True, env=e,
                          cwd=cwd, timeout=120)


@needs_subprocess
def test_run_script_unchanged(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    p = run(["-m", "pycoro.compat", "run", str(tmp_path / "app.py"), "a", "b"])
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [
        "main __main__ pycoro.compat.greenlet ['a', 'b']",
        "switch 42",
        "child pycoro.compat.greenlet",
    ]


@needs_subprocess
def test_run_module_unchanged(tmp_path):
    (tmp_path / "apppkg").mkdir()
    (tmp_path / "apppkg" / "__init__.py").write_text("")
    (tmp_path / "apppkg" / "cli.py").write_text(APP)
    p = run(["-m", "pycoro.compat", "run", "-m", "apppkg.cli", "x"], cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0] == "main __main__ pycoro.compat.greenlet ['x']"
    assert p.stdout.splitlines()[2] == "child pycoro.compat.greenlet"


@needs_subprocess
def test_pth_is_a_no_op_without_the_variable():
    code = textwrap.dedent("""
        import site, sys
        site.addsitedir(%r)
        print("pycoro.compat.greenlet" in sys.modules, "pycoro" in sys.modules)
        try:
            import greenlet
            print(greenlet.__name__)
        except ImportError:
            print("absent")
    """ % ROOT)
    # Without the variable: the real greenlet, or none where it is not
    # installed (the arm64 lane) -- never ours.
    off = run(["-c", code])
    assert off.returncode == 0, off.stderr
    assert off.stdout.split() in (["False", "False", "greenlet"], ["False", "False", "absent"])
    for value in ("0", ""):
        p = run(["-c", code], env={"PYCORO_GREENLET": value})
        assert p.stdout.split() == off.stdout.split(), p.stderr
    on = run(["-c", code], env={"PYCORO_GREENLET": "1"})
    assert on.returncode == 0, on.stderr
    assert on.stdout.split() == ["True", "True", "pycoro.compat.greenlet"]


@needs_subprocess
def test_run_usage_error():
    p = run(["-m", "pycoro.compat", "walk"])
    assert p.returncode == 2 and "usage" in p.stderr
