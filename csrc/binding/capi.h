/* capi: the C API tables other extensions import (see capi.c).
 * Calls fiber; called by module and greenlet_type. */
#ifndef PYCORO_CAPI_H
#define PYCORO_CAPI_H

#include "mstate.h"

/* Add pycoro._pycoro._C_API to `module`: 0, or -1 with an exception. */
int pyc_capi_add(PyObject *module, pyc_module_state *st);
/* Add `table` to `module` as attribute `attr`, in a capsule named `name`
 * (how both tables are published; greenlet_type.c has the other): 0, or -1
 * with an exception.  The module state keeps the table itself. */
int pyc_capi_publish(PyObject *module, const char *attr, const char *name, void *table);
/* Free what pyc_capi_add made (module state is being cleared). */
void pyc_capi_clear(pyc_module_state *st);

#endif
