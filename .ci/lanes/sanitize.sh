#!/usr/bin/env bash
# Sanitizer lane: the extension and the cffi core test module built with
# -fsanitize=address,undefined, the whole pytest suite run with the ASan
# runtime preloaded into the (uninstrumented) CPython.  Zero reports needed.
#
# The build happens in a copy of the tree ($SAN_LAB/tree), so the normal
# in-place build that the other lanes import is never touched.
#
# Env: SAN_LAB (work dir, default /tmp/pycoro-sanitize-lane, wiped first),
# PYCORO_TEST_SCALE (default 0.2 here).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
LANE="ASan+UBSan build, whole suite"
T0=$SECONDS
PROJ=$(cd "$(dirname "$0")/../.." && pwd)
LAB=${SAN_LAB:-/tmp/pycoro-sanitize-lane}
step() { echo "---- [$LANE] $* ($((SECONDS - T0)) s)"; }

rm -rf "$LAB"
mkdir -p "$LAB/reports"
# shellcheck source=asan_build.sh
. "$PROJ/.ci/lanes/asan_build.sh"

step "pytest tests/ under ASan+UBSan"
set +e
timeout 1500 python3 -m pytest -p no:cacheprovider -q tests 2>&1 | tee "$LAB/pytest.log"
rc=${PIPESTATUS[0]}
set -e
nrep=$(asan_reports)
echo "==== lane: $LANE"
echo "==== wall time: $((SECONDS - T0)) s"
echo "==== sanitizer reports: $nrep"
if [ "$nrep" != 0 ]; then
    for f in "$LAB"/reports/*; do echo "---- $f"; head -60 "$f"; done
    exit 1
fi
exit "$rc"
