/* greenlet_type: greenlet 3's type and C ABI over pycoro.Fiber.
 *
 * Owns: the `greenlet.greenlet` heap type (a Fiber subclass that adds no
 * field, so its instances are greenlet 3's 40-byte PyGreenlet and C or
 * Cython code built against greenlet.h -- gevent's Greenlet -- extends it
 * unchanged), adoption of a thread's main fiber as a greenlet, and the
 * capsule `greenlet._C_API` (the 12 pointers of greenlet.h, in its order).
 * The rest of greenlet's Python API (throw's rules for unstarted and dead
 * greenlets, repr, copying) is added to the type by pycoro/compat/greenlet.py.
 * Calls: capi (to publish the capsule), fiber, thread.  Called by: module.
 */
#ifndef PYCORO_GREENLET_TYPE_H
#define PYCORO_GREENLET_TYPE_H

#include "mstate.h"

/* Make st->greenlet_type (subclass of st->fiber_type) and add it and the
 * capsule to `module` as `greenlet` and `_greenlet_C_API`: 0, or -1. */
int pyc_greenlet_add(PyObject *module, pyc_module_state *st);
void pyc_greenlet_clear(pyc_module_state *st);

/* `o` itself (borrowed); a plain main Fiber is made a greenlet in place
 * (greenlet code sees greenlets only; the C state is the same). */
PyObject *pyc_greenlet_adopt(pyc_module_state *st, PyObject *o);

/* greenlet.getcurrent(): this thread's running fiber, adopted (new ref). */
PyObject *pyc_greenlet_getcurrent(pyc_module_state *st);

#endif
