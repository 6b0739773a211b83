#!/usr/bin/env bash
# ARM64 lane: cross-build pycoro for aarch64 and run the whole pytest suite
# (tests/) under qemu user-mode emulation, with Debian's own arm64 CPython
# 3.11 as the interpreter.  Also assembles both switch files as Mach-O objects
# with clang (macOS can only be assembled here, not run).
#
# Starts from a clean machine, as root:
#   1. host tools: qemu-user-static, the aarch64 cross gcc, clang
#   2. an arm64 sysroot unpacked from Debian's arm64 python3.11/-dev packages,
#      resolved with a private apt state (the host dpkg database is untouched)
#   3. the test dependencies (pyproject's `test`/`bench` extras) for aarch64, fetched
#      by the host pip as aarch64 wheels (cffi and friends have C code)
#   4. binfmt_misc registration so tests can exec the aarch64 sys.executable
#      (optional: where it fails, tests marked needs_subprocess skip)
#   5. build the extension with the emulated python (its sysconfig names
#      aarch64-linux-gnu-gcc, the host's cross compiler); the cffi core module
#      is built by tests/core/ffi_build.py at test time the same way
#   6. pytest tests/ under qemu with PYCORO_TEST_SCALE=0.1
#
# Env: ARM64_LAB (work dir, default /tmp/pycoro-arm64-lane, wiped at start
# unless ARM64_LAB_KEEP=1), PYCORO_TEST_SCALE (default 0.1).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
LANE="arm64 / CPython 3.11 under qemu-user (whole suite)"
T0=$SECONDS
PROJ=$(cd "$(dirname "$0")/../.." && pwd)
LAB=${ARM64_LAB:-/tmp/pycoro-arm64-lane}
SR=$LAB/sysroot
PY=$LAB/py-arm64
step() { echo "---- [$LANE] $* ($((SECONDS - T0)) s)"; }

echo "==== lane: $LANE"
if [ "${ARM64_LAB_KEEP:-0}" != 1 ]; then
    rm -rf "$LAB"
fi
mkdir -p "$LAB"

# ---- 1. host tools -----------------------------------------------------------
step "host tools: qemu-user-static, gcc-aarch64-linux-gnu, clang"
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    qemu-user-static gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu clang >/dev/null

# ---- Mach-O: both switch files must assemble for macOS ---------------------
# (cheap, so first: a portability break shows up before the long part)
step "Mach-O assembly check with clang"
for target in arm64-apple-macos11 x86_64-apple-macos11; do
    obj=$LAB/switch-$target.o
    clang -target "$target" -c "$PROJ/csrc/arch/switch.S" -I "$PROJ/csrc" -o "$obj"
    for fixture in regcheck floor; do
        clang -target "$target" -c "$PROJ/tests/core/$fixture.S" -I "$PROJ/csrc" -I "$PROJ/tests/core" \
            -o "$LAB/$fixture-$target.o"
    done
    python3 - "$obj" "$target" <<'EOF'
import struct, sys
path, target = sys.argv[1:]
data = open(path, "rb").read()
magic, cputype = struct.unpack_from("<II", data)
want = {"arm64": 0x0100000C, "x86_64": 0x01000007}[target.split("-")[0]]
assert magic == 0xFEEDFACF, f"{path}: not a 64-bit Mach-O object (magic {magic:#x})"
assert cputype == want, f"{path}: cputype {cputype:#x}, expected {want:#x}"
assert b"_pc__switch_asm\0" in data, f"{path}: no _pc__switch_asm symbol"
print(f"Mach-O {target}: ok (cputype {cputype:#x}, _pc__switch_asm defined)")
EOF
done

# ---- 2. arm64 sysroot from Debian's packages, private apt state -------------
step "arm64 sysroot from Debian's python3.11 packages"
if [ ! -x "$SR/usr/bin/python3.11" ]; then
    mkdir -p "$LAB/apt/lists/partial" "$LAB/apt/cache/archives/partial" "$LAB/debs" "$SR"
    : > "$LAB/apt/status"
    cat > "$LAB/apt/apt.conf" <<EOF
APT::Architecture "arm64";
APT::Architectures { "arm64"; };
APT::Sandbox::User "root";
Dir::State::Lists "$LAB/apt/lists";
Dir::State::status "$LAB/apt/status";
Dir::Cache "$LAB/apt/cache";
EOF
    (
        export APT_CONFIG=$LAB/apt/apt.conf
        apt-get update -qq
        pkgs=$(apt-get -s install --no-install-recommends python3.11 python3.11-dev libstdc++6 \
            | awk '/^Inst/{print $2}')
        cd "$LAB/debs" && apt-get download -qq $pkgs
    )
    for d in "$LAB"/debs/*.deb; do dpkg -x "$d" "$SR"; done
fi

# ---- 3. test dependencies for the target ------------------------------------
# The `test` and `bench` extras of pyproject.toml (tests/test_bench_cli.py
# plots with matplotlib), so the lane follows whatever the suite needs.  Wheels only: pure-Python ones plus manylinux aarch64 builds of the
# packages with C code (cffi, greenlet, gevent, ...).
step "test dependencies (aarch64 wheels, host pip)"
mapfile -t deps < <(python3 - "$PROJ/pyproject.toml" <<'EOF'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    extras = tomllib.load(f)["project"].get("optional-dependencies", {})
for extra in ("test", "bench"):
    for req in extras.get(extra, []):
        print(req)
EOF
)
deps+=(pytest cffi setuptools)     # the lane itself needs these whatever the extra says
platforms=(--platform manylinux2014_aarch64)
for minor in $(seq 17 36); do platforms+=(--platform "manylinux_2_${minor}_aarch64"); done
# (the grep drops this machine's pip-config noise about absent local indexes)
python3 -m pip install -q --upgrade --target "$LAB/pydeps" --only-binary=:all: \
    "${platforms[@]}" --python-version 3.11 --implementation cp "${deps[@]}" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)

cat > "$PY" <<EOF
#!/bin/sh
PYTHONPATH="$LAB/pydeps\${PYTHONPATH:+:\$PYTHONPATH}" exec qemu-aarch64-static -L "$SR" "$SR/usr/bin/python3.11" "\$@"
EOF
chmod +x "$PY"
"$PY" -c 'import sys, platform, cffi; print("target:", platform.machine(), sys.version.split()[0], "cffi", cffi.__version__)'

# ---- 4. binfmt_misc: let the kernel run aarch64 sys.executable -------------
step "binfmt_misc registration for qemu-aarch64"
export QEMU_LD_PREFIX=$SR      # where qemu (run by the kernel) finds the arm64 ld.so and libs
BINFMT=/proc/sys/fs/binfmt_misc
if { mountpoint -q $BINFMT || mount -t binfmt_misc binfmt_misc $BINFMT; } 2>/dev/null; then
    if [ ! -e $BINFMT/qemu-aarch64 ]; then
        cat /usr/lib/binfmt.d/qemu-aarch64.conf > $BINFMT/register 2>/dev/null || true
    fi
fi
if [ -e $BINFMT/qemu-aarch64 ] && grep -q enabled $BINFMT/qemu-aarch64; then
    echo "binfmt_misc: qemu-aarch64 registered; subprocess tests run"
else
    echo "binfmt_misc: qemu-aarch64 NOT registered; tests marked needs_subprocess will skip"
fi

# ---- 5. build -----------------------------------------------------------------
# -I first: the emulated sysconfig names /usr/include/python3.11, which the
# host cross gcc would otherwise look up on the host.
SYSROOT_CFLAGS="--sysroot=$SR -I$SR/usr/include/python3.11"
SYSROOT_LDFLAGS="--sysroot=$SR"
export PYCORO_CFLAGS="$SYSROOT_CFLAGS"            # setup.py
export LDFLAGS="$SYSROOT_LDFLAGS"                 # distutils appends it to LDSHARED
export PYCORO_CORE_CFLAGS="$SYSROOT_CFLAGS"       # tests/core/ffi_build.py
export PYCORO_CORE_LDFLAGS="$SYSROOT_LDFLAGS"
step "build the extension for aarch64 (setup.py build_ext --inplace, emulated python)"
cd "$PROJ"
"$PY" -c 'import sysconfig; print("target CC:", sysconfig.get_config_var("CC"))'
"$PY" setup.py -q build_ext --inplace
step "build the cffi core module for aarch64 (tests/core/ffi_build.py)"
"$PY" -m tests.core.ffi_build

# ---- 6. the whole suite under emulation ------------------------------------
export PYCORO_TEST_SCALE=${PYCORO_TEST_SCALE:-0.1} PYCORO_EMULATED=qemu-aarch64
export PYTHONPATH=$PROJ
step "pytest tests/ under qemu-aarch64 (PYCORO_TEST_SCALE=$PYCORO_TEST_SCALE)"
# Two end-to-end tests of the bench CLI are left to the native and bench
# lanes: they run every bench row (servers, worker processes, matplotlib) and
# took 377 s of this lane's 953 s under qemu (2026-12-03), testing Python-level
# report logic that is the same on every architecture.  The raw C core row,
# the part that is arm64's own, is still run here (tests/core).
DESELECT=(--deselect tests/test_bench_cli.py::test_quick_json_has_every_measure
          --deselect tests/test_bench_cli.py::test_plot_writes_png)
set +e
timeout 2400 "$PY" -m pytest -p no:cacheprovider -rsfE -s -q --durations=10 "${DESELECT[@]}" tests 2>&1 | tee "$LAB/pytest.log"
rc=${PIPESTATUS[0]}
set -e
echo "==== lane: $LANE"
echo "==== wall time: $((SECONDS - T0)) s"
echo "==== pytest summary (aarch64): $(grep -E '^=* ?[0-9]+ (passed|failed|error)|^=+ .* in [0-9.]+s' "$LAB/pytest.log" | tail -1)"
grep -oE 'raw C core switch: [0-9.]+ ns \([^)]*\)' "$LAB/pytest.log" | sed 's/^/==== aarch64 (qemu) /' || true
grep -E '^SKIPPED' "$LAB/pytest.log" | sed 's/^/==== /' || true
exit "$rc"
