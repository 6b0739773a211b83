#!/usr/bin/env bash
# One CPython version: build pycoro from its sdist, install it into a fresh
# venv, run the WHOLE test suite against the installed package, and print the
# switch round-trip ratio vs greenlet on that version.
#
#   bash .ci/lanes/pyver.sh 3.11|3.12|3.13|3.13t|3.14
#
# Where each interpreter comes from on these machines:
#   3.11         the host's python3 (pyenv, the image's default)
#   3.12, 3.13   pyenv builds shipped in the image ($PYENV_ROOT/versions/3.1x.*)
#   3.14         Debian sid's python3.14-dev in a debootstrap chroot (~1 min to
#                make; kept in $PYVER_LAB between runs, PYVER_FRESH=1 rebuilds)
#   3.13t        free-threaded 3.13, built by build_313t.sh from Debian trixie's
#                python3.13 source with --disable-gil (~5 min on 2 cores the
#                first time; kept in $PYVER_LAB/cpython-3.13t, PYVER_FRESH=1
#                rebuilds).  The suite runs with the GIL off (the lane checks).
#                Some test dependencies do not install there: cffi refuses
#                free-threaded 3.13 (the core's cffi tests skip, saying so),
#                greenlet 3.5 does not compile for it (3.4 does), hypothesis
#                >= 6.140 needs a Rust build (older ones are pure Python), no
#                gevent/matplotlib/coverage (their tests skip, saying so).
#
# Why the tests cannot import the checkout's pycoro/ by accident: they run
# from the UNPACKED SDIST (so a file missing from MANIFEST.in fails here)
# with its pycoro/ source folder deleted.  `python -m pytest` puts the cwd on
# sys.path (the tests import `tests.core.ffi_build` etc. from there, and the
# C core sources next to them), but with no pycoro/ folder in the cwd the only
# `pycoro` on sys.path is the one pip installed from the sdist; the lane checks
# pycoro.__file__ before running pytest.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

# ---- inside: run with the interpreter, in a work dir (host or chroot) -------
if [ "${1:-}" = --inner ]; then
    PY=$2; SRC=$3; W=$4
    T0=$SECONDS
    step() { echo "---- [$("$PY" -c 'import platform; print(platform.python_version())')] $* ($((SECONDS - T0)) s)"; }
    rm -rf "$W"; mkdir -p "$W"
    step "venv + build and test dependencies"
    "$PY" -m venv "$W/venv"
    VPY=$W/venv/bin/python
    FT=$("$VPY" -c 'import sysconfig; print(int(bool(sysconfig.get_config_var("Py_GIL_DISABLED"))))')
    if [ "$FT" = 1 ]; then
        # see the top: what installs on free-threaded 3.13
        "$VPY" -m pip install -q build setuptools wheel pytest 'hypothesis<6.140' 'greenlet<3.5' pytest-benchmark coverage
        if ! "$VPY" -m pip install -q cffi >"$W/cffi.log" 2>&1; then
            echo "cffi does not install on this version (the core's cffi tests skip):"
            grep -m1 -i "cffi does not support" "$W/cffi.log" || tail -2 "$W/cffi.log"
        fi
    else
        "$VPY" -m pip install -q build setuptools wheel pytest cffi hypothesis greenlet pytest-benchmark coverage
    fi
    if ! "$VPY" -m pip install -q gevent >"$W/gevent.log" 2>&1; then
        echo "gevent does not install on this version (its tests skip):"; tail -3 "$W/gevent.log"
    fi
    # the bench CLI's --plot test (the `bench` extra)
    if ! "$VPY" -m pip install -q matplotlib >"$W/matplotlib.log" 2>&1; then
        echo "matplotlib does not install on this version (the --plot test skips):"
        tail -3 "$W/matplotlib.log"
    fi
    step "python -m build --sdist"
    "$VPY" -m build --sdist --no-isolation --outdir "$W/dist" "$SRC" >"$W/build.log" 2>&1 \
        || { tail -30 "$W/build.log"; exit 1; }
    SDIST=$(ls "$W"/dist/pycoro-*.tar.gz)
    if tar -tzf "$SDIST" | grep -E '\.(so|o)$'; then
        echo "the sdist contains build products"; exit 1
    fi
    step "pip install $(basename "$SDIST")"
    "$VPY" -m pip install -q --no-build-isolation "$SDIST"
    step "unpack the sdist (without pycoro/) and run the whole suite"
    mkdir -p "$W/run"
    tar -xzf "$SDIST" -C "$W/run" --strip-components=1
    rm -rf "$W/run/pycoro"
    cd "$W/run"
    "$VPY" - "$W/venv" <<'EOF'
import os, sys, pycoro, pycoro._pycoro as ext
venv = os.path.realpath(sys.argv[1])
for m in (pycoro, ext):
    assert os.path.realpath(m.__file__).startswith(venv), "not the installed package: %s" % m.__file__
print("testing the installed package:", os.path.dirname(ext.__file__))
import sysconfig
if sysconfig.get_config_var("Py_GIL_DISABLED"):
    assert not sys._is_gil_enabled(), "importing pycoro switched the GIL on"
    print("free-threaded build: the GIL stays off")
EOF
    # Every test runs; the iteration counts of the long randomized and
    # lifecycle tests (fuzz, stress graphs, leak loops, scale) are a quarter
    # of the native lane's (PYCORO_TEST_SCALE, as the arm64 lane uses 0.1):
    # what differs between versions is which code paths run, not how many
    # times (native runs the full counts on 3.11, fuzz runs 1,000,000 ops).
    export PYCORO_TEST_SCALE=${PYCORO_TEST_SCALE:-0.25}
    echo "PYCORO_TEST_SCALE=$PYCORO_TEST_SCALE"
    set +e
    "$VPY" -m pytest -q -rsfE -p no:cacheprovider tests 2>&1 | tee "$W/pytest.log" | tail -25
    rc=${PIPESTATUS[0]}
    set -e
    echo "pytest summary: $(tail -1 "$W/pytest.log")"
    [ "$rc" = 0 ] || exit "$rc"
    step "switch round trip vs greenlet"
    "$VPY" "$SRC/.ci/lanes/switch_ratio.py"
    step "done"
    exit 0
fi

# ---- outside: find the interpreter --------------------------------------------
VER=${1:?usage: pyver.sh 3.11|3.12|3.13|3.14}
PROJ=$(cd "$(dirname "$0")/../.." && pwd)
LAB=${PYVER_LAB:-/tmp/pycoro-pyver}
mkdir -p "$LAB"
# other jobs on the machine may hold the apt locks: wait for them
for _ in $(seq 60); do apt-get -o DPkg::Lock::Timeout=600 update -qq && break; sleep 10; done
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends gcc libc6-dev >/dev/null

pyenv_python() {  # newest $PYENV_ROOT/versions/$1.N (not a 't' build)
    local d
    d=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$1".* 2>/dev/null | grep -E "/$1\.[0-9]+$" | sort -V | tail -1 || true)
    [ -n "$d" ] && [ -x "$d/bin/python$1" ] && echo "$d/bin/python$1"
}

case "$VER" in
3.13t)
    [ "${PYVER_FRESH:-0}" = 1 ] && rm -rf "$LAB/cpython-3.13t"
    PY=$(bash "$PROJ/.ci/lanes/build_313t.sh" "$LAB/cpython-3.13t")
    # PYTHON_GIL stays unset: a module that needs the GIL must be seen
    # switching it on (the lane and test_free_threading.py check it is off).
    unset PYTHON_GIL
    # Every collection of 3.13t walks the whole heap (no generations, and
    # gc.freeze() still visits frozen objects): the hypothesis stress tests,
    # which collect at every step, took 380 s and 340 s at full size.  The
    # whole suite runs, at a tenth of the iteration counts (as under qemu).
    export PYCORO_TEST_SCALE=${PYCORO_TEST_SCALE:-0.1}
    exec bash "$PROJ/.ci/lanes/pyver.sh" --inner "$PY" "$PROJ" "$LAB/work-3.13t"
    ;;
3.11|3.12|3.13)
    PY=$(pyenv_python "$VER" || true)
    [ -n "$PY" ] || PY=$(command -v "python$VER" || true)
    [ -n "$PY" ] || { echo "no CPython $VER here"; exit 1; }
    exec bash "$PROJ/.ci/lanes/pyver.sh" --inner "$PY" "$PROJ" "$LAB/work-$VER"
    ;;
3.14)
    CH=$LAB/chroot-sid
    if [ "${PYVER_FRESH:-0}" = 1 ] || [ ! -f "$CH/.ready" ]; then
        if [ -d "$CH" ]; then
            mountpoint -q "$CH/proc" && umount "$CH/proc"
            rm -rf "$CH"
        fi
        apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends debootstrap ca-certificates >/dev/null
        echo "---- debootstrap --variant=minbase sid"
        debootstrap --variant=minbase sid "$CH" http://deb.debian.org/debian >"$LAB/debootstrap.log" 2>&1 \
            || { tail -20 "$LAB/debootstrap.log"; exit 1; }
        # the mirror's sid Release file can be past Valid-Until (frozen snapshot)
        echo 'Acquire::Check-Valid-Until "false";' >"$CH/etc/apt/apt.conf.d/99no-check-valid-until"
        echo "---- apt-get install python3.14-dev python3.14-venv gcc in the chroot"
        chroot "$CH" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root DEBIAN_FRONTEND=noninteractive \
            sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends python3.14-dev python3.14-venv gcc libc6-dev ca-certificates && apt-get clean' \
            >"$LAB/chroot-apt.log" 2>&1 || { tail -20 "$LAB/chroot-apt.log"; exit 1; }
        # pip in the chroot needs the host's extra CA certificates (TLS proxy)
        if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
            mkdir -p "$CH/usr/local/share/ca-certificates"
            cp /usr/local/share/ca-certificates/*.crt "$CH/usr/local/share/ca-certificates/"
            chroot "$CH" /usr/sbin/update-ca-certificates >/dev/null 2>&1
        fi
        touch "$CH/.ready"
    fi
    mountpoint -q "$CH/proc" || mount -t proc proc "$CH/proc"
    trap 'mountpoint -q "$CH/proc" && umount "$CH/proc"' EXIT
    # a copy of the checkout (its tracked and untracked-but-not-ignored files)
    rm -rf "$CH/src/pycoro"; mkdir -p "$CH/src/pycoro"
    (cd "$PROJ" && { git ls-files -co --exclude-standard 2>/dev/null || find . -type f -not -path './.git/*'; } \
        | grep -v -E '\.(so|o)$' | tar -cf - -T -) | tar -C "$CH/src/pycoro" -xf -
    chroot "$CH" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 \
        PIP_DISABLE_PIP_VERSION_CHECK=1 \
        bash /src/pycoro/.ci/lanes/pyver.sh --inner /usr/bin/python3.14 /src/pycoro /srv/work-3.14
    ;;
*)
    echo "unsupported version $VER"; exit 2 ;;
esac
