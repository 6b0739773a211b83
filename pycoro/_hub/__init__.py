"""The hub's implementation, split by concern (the public face is pycoro.hub).

Layers, each importing only the ones above it in this list:

    _errors    exceptions, constants, argument checks        (imports nothing of the hub)
    _outcome   Error: how a task that raised ended
    _parking   the primitive: park() / reschedule(), Waiter, the run queue step
    _scopes    interruption delivery, timeout / move_on_after / shield
    _timers    the timer heap, and sleep() on top of it
    _io        the fd poller, and wait_readable() / wait_writable() on top of it
    _task      Task: what a unit of work is (callable, outcome, joiners)
    _run       Hub: the run loop; run(), spawn(), get_hub()

pycoro.sync, pycoro.channel and pycoro.group build on _parking / _scopes /
_task's package-internal functions only (docs/hub.md).
"""
