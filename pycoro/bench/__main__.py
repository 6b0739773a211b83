"""`python -m pycoro.bench` = `python -m pycoro bench`.  May call: cli,
pycoro.__main__ (its pipe handling)."""
import sys

from ..__main__ import run_command
from .cli import main

sys.exit(run_command(main))
