"""`python -m pycoro bench`: pycoro against greenlet (and gevent, asyncio,
uvloop, trio for the hub and network rows), with verdicts that say no more
than the samples show.

Method (after pyperf's: worker processes, calibrated loops, warm-ups, the
spread of the values, a warning when the machine is too noisy):

- Every replicate is a fresh worker process (workers.py).  Timing workers
  calibrate their loop count until one burst lasts 0.25 ms (pyperf
  calibrates to 100 ms values and warns under 1 ms; here a burst must fit
  between two preemptions of a shared machine; PYCORO_BENCH_SCALE scales
  it), run one warm-up sample, then a few samples, each the fastest of 5
  bursts; the process's replicate is the median of its samples.
- The two implementations alternate round by round (which goes first
  alternates too), so a round's two processes ran back to back on the same
  machine state, and a ratio row judges the per-round ratios.
- greenlet is bimodal from process to process (by where its stack lands,
  its switch takes one of two speeds).  stats.better_mode() splits the
  baseline's processes at the largest jump between sorted values when it is
  at least 15 % and the faster side has two or more processes; only the
  rounds whose baseline process is in the faster mode are judged, so pycoro
  is held against greenlet's better mode (the table's note says when).  The
  network rows, whose baseline is another server, judge every round.
- A row's verdict compares the whole confidence interval of the median of
  its replicates with the target (stats.judge): PASS, FAIL or
  "inconclusive" with the numbers; fewer than 3 replicates never give a
  verdict.  A std dev of the replicates above 10 % of their mean is noted.
- Flatness in live fibers: each round (a fresh process growing 10^2 ..
  10^6 fibers) gives max/min of its per-size medians; the row judges those
  per-round values like any other replicates.

Files: cli (arguments, run), sizes (counts, progress), runner (processes,
rounds, verdict of a row), rows / rows_net (the measures), stats (the
statistics), report (the table), compare (--compare), workers / workloads
(what runs in the worker processes), core / core_ffi (the raw C core row and
its cffi module, built on first use into ~/.cache/pycoro), gevent_work, net
(the hub's rows), plot (--plot).

Owns: nothing but this description and the entry points.  May call: cli.
Importing it loads only the standard library.
"""
from .cli import add_arguments, command, main  # noqa: F401
