/* capi: the C API tables other extensions import (see capi.c).
 * Calls fiber; called by module. */
#ifndef PYCORO_CAPI_H
#define PYCORO_CAPI_H

#include "mstate.h"

/* Add pycoro._pycoro._C_API to `module`: 0, or -1 with an exception. */
int pyc_capi_add(PyObject *module, pyc_module_state *st);
/* Free what pyc_capi_add made (module state is being cleared). */
void pyc_capi_clear(pyc_module_state *st);

#endif
