/* switch: how control moves between fibers -- greenlet's rules on the core.
 *
 * Owns: the payload a switch carries (values, arguments or an exception),
 * the choice of the fiber that really receives it (dead fibers pass to
 * their parent, an exception thrown at a new fiber ends it unstarted), the
 * binding of a new fiber to the thread that starts it, the switch itself
 * around pc_switch() (interpreter state saved and restored, the tracer
 * called), a new fiber's first and last steps on its own stack, and
 * unwinding a suspended fiber with FiberExit.
 * Calls: thread, pystate, the core, CPython.  Called by: fiber, capi.
 *
 * A switch is three steps around pc_switch():
 *   1. the caller parks the payload in its pyc_thread (pyc_park_*) and
 *      pyc_switch() saves its interpreter state;
 *   2. pc_switch() copies C stacks; the code after it runs in the fiber
 *      that is resumed, inside its own earlier call to pyc_switch();
 *   3. that fiber restores its interpreter state, takes the payload, calls
 *      the tracer and drops the reference to the fiber it came from.
 * A new fiber arrives in its entry function instead, on a fresh stack.
 */
#ifndef PYCORO_SWITCH_H
#define PYCORO_SWITCH_H

#include "fiberobj.h"

/* Park the payload of switch() or switch(value). */
static inline void pyc_park_simple(pyc_thread *th, PyObject *const *args, Py_ssize_t nargs)
{
    th->pass = nargs ? PASS_VALUE : PASS_ARGS;
    th->pass_value = Py_NewRef(nargs ? args[0] : th->mstate->empty_tuple);
    th->pass_kwargs = NULL;
}
/* Park switch(*args, **kwargs) given vectorcall-style (kwnames may be
 * NULL): 0, or -1 with MemoryError (nothing parked). */
int pyc_park_args(pyc_thread *th, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
/* Park throw(typ, val, tb) as generator.throw() reads its arguments: 0, or
 * -1 with TypeError (nothing parked).  typ NULL means FiberExit. */
int pyc_park_throw(pyc_thread *th, PyObject *typ, PyObject *val, PyObject *tb);

/* Can the running fiber of `th` switch to (or throw into) `f`?  It must
 * belong to this thread -- an unstarted fiber to the thread of its nearest
 * started ancestor -- and not be in its own finalizer.  0, or -1 with
 * FiberError naming both threads (or saying the other one has ended). */
int pyc_check_switchable(pyc_thread *th, pyc_fiber *f, const char *finalizing_msg);

/* Switch from the running fiber to `target` (checked with
 * pyc_check_switchable) with the parked payload.  Returns what this fiber
 * receives when it is resumed, or NULL with an exception (then nothing
 * was switched and the payload is dropped). */
PyObject *pyc_switch(pyc_thread *th, PyFiber *target);

/* Throw FiberExit into `f`, a suspended fiber of this thread, so that its
 * `finally` blocks run, with the running fiber as its parent for the
 * duration.  The caller's exception, if any, is kept. */
void pyc_kill(pyc_thread *th, PyFiber *f);
/* Unwind the fibers other threads handed to this one. */
void pyc_kill_pending(pyc_thread *th);

/* Bind a new fiber to `th` (the thread that starts it), or back to no
 * thread if its start failed. */
void pyc_bind(pyc_thread *th, pyc_fiber *f);
void pyc_unbind(pyc_fiber *f);

#endif
