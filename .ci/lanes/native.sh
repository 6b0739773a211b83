#!/usr/bin/env bash
# The README's test command on the host interpreter, after the system
# packages a fresh Debian machine lacks.
set -euo pipefail
apt-get update -qq
apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null
python3 -m pip install -q -e '.[test]' && python3 -m pytest
