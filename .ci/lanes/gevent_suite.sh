#!/usr/bin/env bash
# gevent's own test suite (from the compiled gevent wheel) on real greenlet
# and on pycoro side by side, each file in its own process
# (tests/gevent_suite/run_suite.py).  pycoro is installed from a wheel here
# (not editable): the runner needs pycoro-greenlet.pth in site-packages, so
# that processes the tests start get pycoro too.  Fails when a file that
# passes on greenlet fails on pycoro.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
PROJ=$(cd "$(dirname "$0")/../.." && pwd)
LAB=${GEVENT_LAB:-/tmp/pycoro-gevent-lane}
T0=$SECONDS
rm -rf "$LAB"; mkdir -p "$LAB"
if ! command -v gcc >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null
fi
quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
python3 -m venv "$LAB/venv"
PY="$LAB/venv/bin/python"
quiet "$PY" -m pip install -q --upgrade pip setuptools wheel
# The wheels gevent's test modules need: gevent (compiled, its tests ship in
# the wheel), greenlet (the peer), and gevent's test extras.
quiet "$PY" -m pip install -q "$PROJ" 'gevent==26.9.0' greenlet psutil objgraph requests
cd "$LAB"      # not the checkout: `import pycoro` must find the installed wheel
"$PY" - <<'PYEOF'
import site, os, sys
assert any(os.path.exists(os.path.join(d, "pycoro-greenlet.pth")) for d in site.getsitepackages()), \
    "the pycoro wheel did not install pycoro-greenlet.pth"
import pycoro, gevent
assert "site-packages" in pycoro.__file__, pycoro.__file__
print("pycoro", pycoro.__file__, "gevent", gevent.__version__)
PYEOF
set +e
"$PY" "$PROJ/tests/gevent_suite/run_suite.py" --jobs 2 | tee "$LAB/suite.log"
rc=${PIPESTATUS[0]}
set -e
echo "==== lane: gevent's test suite on greenlet and pycoro"
echo "==== wall time: $((SECONDS - T0)) s"
grep -E "^pycoro passes|^fail on|^second chance" "$LAB/suite.log" | sed 's/^/==== /'
exit "$rc"
