"""`python -m pycoro.bench` = `python -m pycoro bench`.  May call: cli."""
import sys

from .cli import main

sys.exit(main())
