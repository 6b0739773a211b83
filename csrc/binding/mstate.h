/* mstate: the module state (per interpreter), a declaration every layer
 * above thread reads.  Owned and filled by module.c. */
#ifndef PYCORO_MSTATE_H
#define PYCORO_MSTATE_H

#include "thread.h"

struct pyc_module_state {
    PyTypeObject *fiber_type;
    PyTypeObject *greenlet_type;   /* greenlet.greenlet (greenlet_type.c): its
                                      instances get greenlet's messages */
    PyObject *FiberExit;
    PyObject *FiberError;
    PyObject *str_run;
    PyObject *str_switch;
    PyObject *str_throw;
    PyObject *thread_key;       /* of the capsule in each thread-state dict */
    PyObject *empty_tuple;      /* what switch() with no arguments delivers */
    void *capi_table;           /* the C API table (capi.c) */
    void **greenlet_api;        /* greenlet.h's table (greenlet_type.c) */
};

#endif
