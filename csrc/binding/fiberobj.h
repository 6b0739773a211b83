/* fiberobj: what a fiber is made of -- the object layout (greenlet's) and
 * the state behind it.  Declarations only; read by switch, fiber, capi.
 *
 * The object is exactly greenlet 3's PyGreenlet: PyObject_HEAD, weakreflist,
 * dict and one opaque pointer (40 bytes on 64-bit, 56 on free-threaded
 * builds, whose object header is 32 bytes), so that C and Cython
 * code compiled against greenlet's header (gevent's Greenlet puts its own
 * fields right after these 40 bytes) can extend pycoro's types unchanged.
 * Everything else lives behind `impl`, allocated with the object. */
#ifndef PYCORO_FIBEROBJ_H
#define PYCORO_FIBEROBJ_H

#include "mstate.h"

struct PyFiber {
    PyObject_HEAD
    PyObject *weakreflist;      /* offset 16, as greenlet's */
    PyObject *dict;             /* offset 24 */
    pyc_fiber *impl;            /* offset 32: greenlet's pimpl */
};

struct pyc_fiber {
    pc_fiber core;              /* the C-stack side; core.thread is NULL
                                   until the fiber is bound to a thread */
    PyFiber *self;              /* the object (borrowed: it owns us) */
    pyc_thread *thread;         /* counted; NULL until started (an unstarted
                                   fiber belongs to its parents' thread) */
    PyFiber *parent;            /* strong; NULL only for a main fiber */
    PyObject *run;              /* the callable, until the fiber starts */
    PyObject *context;          /* of a new or finished fiber (NULL: fresh) */
    struct {                    /* what run() was called with, until it returns */
        PyObject *run, *value, *kwargs;
        pass_kind kind;
    } call;
    pyc_link link;              /* in its thread's registry while started */
    pyc_pending pending;        /* in its thread's pending queue */
    unsigned char is_main;
    unsigned char finalizing;   /* in __del__: switching into it is refused */
    unsigned char orphaned;     /* suspended when its thread ended */
    pyc_pystate pystate;        /* interpreter state while suspended: last,
                                   pyc_pystate_size() bytes (pystate.h) */
};

static inline pyc_fiber *pyc_impl(PyObject *o) { return ((PyFiber *)o)->impl; }

static inline int pyc_fiber_is_active(const pyc_fiber *f)
{
    return f->core.state == PC_RUNNING || f->core.state == PC_SUSPENDED;
}
static inline int pyc_fiber_is_dead(const pyc_fiber *f)
{
    return f->core.state == PC_DEAD || f->core.state == PC_DYING;
}

#endif
