import os

# Iteration counts scale down under emulation (the ARM64 qemu lane sets 0.1).
SCALE = float(os.environ.get("PYCORO_TEST_SCALE", "1"))


def scaled(n, minimum=1):
    return max(minimum, int(n * SCALE))
