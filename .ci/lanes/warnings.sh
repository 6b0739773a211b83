#!/usr/bin/env bash
# Strict-warnings lane: with gcc and with clang, build the extension
# (setup.py) and the cffi core test module (tests/core/ffi_build.py) with
# -Werror -Wall -Wextra, then run a quick subset of the suite on each build.
# Before that, -Wpedantic (also -Werror) on the sources that can take it:
# the pure C core, the core's test fixtures and the C-API test extension
# (which includes the public pycoro.h, as users' extensions do).
#
# Not pedantic, and why: csrc/binding/*.c fills PyType_Slot/PyModuleDef_Slot
# tables, whose `void *` field holds function pointers (CPython's heap-type
# API; ISO C forbids that conversion), and cffi's generated module does the
# same for its function table.  No warning is switched off (-Wno-...) anywhere.
#
# Each compiler builds in its own copy of the tree ($WARN_LAB/<cc>), so the
# in-place build the other lanes import is untouched.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
LANE="strict warnings (gcc, clang)"
T0=$SECONDS
PROJ=$(cd "$(dirname "$0")/../.." && pwd)
LAB=${WARN_LAB:-/tmp/pycoro-warnings-lane}
step() { echo "---- [$LANE] $* ($((SECONDS - T0)) s)"; }
STRICT="-Werror -Wall -Wextra"

rm -rf "$LAB"; mkdir -p "$LAB"
step "system packages (gcc, clang)"
apt-get update -qq
apt-get install -y -qq --no-install-recommends gcc clang libc6-dev >/dev/null
step "test dependencies (pyproject's test extra)"
mapfile -t deps < <(python3 - "$PROJ/pyproject.toml" <<'PYEOF'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["optional-dependencies"]["test"]))
PYEOF
)
# (the grep drops this machine's pip-config noise about absent local indexes)
python3 -m pip install -q "${deps[@]}" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)

PYINC=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
cd "$PROJ"
for cc in gcc clang; do
    step "$cc -Wpedantic $STRICT: core, fixtures, C-API test extension"
    $cc -fsyntax-only -Wpedantic $STRICT -Icsrc csrc/pycoro_core.c
    $cc -fsyntax-only -Wpedantic $STRICT -Icsrc -Itests/core tests/core/fixtures.c
    $cc -fsyntax-only -Wpedantic $STRICT -I"$PYINC" -Ipycoro/include tests/capi/capi_test.c
done

for cc in gcc clang; do
    T=$LAB/$cc
    step "$cc: copy the tree to $T"
    mkdir -p "$T"
    (cd "$PROJ" && git ls-files -z --cached --others --exclude-standard | xargs -0 -r ls -d 2>/dev/null \
        | grep -v -E '\.(so|o)$' | tar -cf - -T -) | tar -xf - -C "$T"
    cd "$T"
    export CC=$cc LDSHARED="$cc -shared"     # distutils takes both from the environment
    step "$cc: extension with $STRICT"
    PYCORO_CFLAGS="$STRICT" python3 setup.py -q build_ext --inplace --force
    step "$cc: cffi core module with $STRICT"
    PYCORO_CORE_CFLAGS="$STRICT" python3 -m tests.core.ffi_build
    # the .comment section names every compiler that produced an object
    for so in pycoro/_pycoro.cpython-*.so build/cffi-core-*/_pycoro_core_ffi*.so; do
        want=$([ "$cc" = clang ] && echo "clang version" || echo "GCC:")
        # (from a variable, not a pipe: grep -q exiting early would SIGPIPE
        # readelf and fail the pipeline under pipefail)
        comment=$(readelf -p .comment "$so")
        grep -q "$want" <<<"$comment" || { echo "$so: not built by $cc"; exit 1; }
    done
    python3 -c 'import pycoro, sys; assert pycoro.__file__.startswith(sys.argv[1]), pycoro.__file__' "$T"
    step "$cc: quick tests on this build"
    # PYCORO_CORE_CFLAGS: the C-API test extension builds with $STRICT too
    PYTHONPATH=$T PYCORO_TEST_SCALE=0.1 PYCORO_CORE_CFLAGS="$STRICT" \
        python3 -m pytest -p no:cacheprovider -q tests/core tests/capi tests/fiber/test_switch.py \
        tests/fiber/test_state.py tests/fiber/test_bad_input.py tests/compat
    unset CC LDSHARED
    cd "$PROJ"
done
echo "==== lane: $LANE"
echo "==== wall time: $((SECONDS - T0)) s"
