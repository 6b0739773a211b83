/* pycoro's C API for extension modules.
 *
 *     #include <pycoro.h>          (include dir: pycoro.get_include())
 *
 *     if (Pycoro_Import() < 0) return NULL;      (e.g. in the module init)
 *     PyObject *f = Pycoro_API->new_fiber(run, NULL);
 *     PyObject *r = Pycoro_API->switch_(f, args, kwargs);
 *
 * The table lives in the capsule `pycoro._pycoro._C_API`.  Every function
 * follows CPython's conventions: new references, NULL/-1 with an exception
 * set on failure.  They run the same code as the Python methods of
 * pycoro.Fiber (switch(), throw(), the parent attribute, ...), without a
 * Python-level call.  Must be called with the GIL held, on the thread that
 * owns the fiber (as from Python).
 */
#ifndef PYCORO_H
#define PYCORO_H

#include <Python.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PYCORO_CAPI_NAME "pycoro._pycoro._C_API"
#define PYCORO_CAPI_VERSION 1

typedef struct {
    /* PYCORO_CAPI_VERSION of the pycoro that filled the table; fields are
     * only ever appended. */
    int version;

    PyTypeObject *Fiber_Type;   /* pycoro.Fiber (borrowed) */
    PyObject *FiberExit;        /* pycoro.FiberExit (borrowed) */
    PyObject *FiberError;       /* pycoro.FiberError (borrowed) */

    /* Fiber(run, parent): run may be NULL (a subclass's run method is used),
     * parent NULL means the current fiber. */
    PyObject *(*new_fiber)(PyObject *run, PyObject *parent);
    /* The running fiber of this thread (new reference). */
    PyObject *(*current)(void);
    /* fiber.switch(*args, **kwargs); args a tuple or NULL (no arguments),
     * kwargs a dict or NULL. */
    PyObject *(*switch_)(PyObject *fiber, PyObject *args, PyObject *kwargs);
    /* fiber.throw(typ, val, tb); typ NULL throws FiberExit; val and tb may
     * be NULL. */
    PyObject *(*throw_)(PyObject *fiber, PyObject *typ, PyObject *val, PyObject *tb);
    /* fiber.parent: new reference, or NULL without an exception set for a
     * main fiber. */
    PyObject *(*get_parent)(PyObject *fiber);
    /* fiber.parent = parent: 0, or -1 with an exception. */
    int (*set_parent)(PyObject *fiber, PyObject *parent);
    /* State predicates: 1 or 0 (-1 with TypeError if not a Fiber). */
    int (*started)(PyObject *fiber);   /* has been switched to */
    int (*active)(PyObject *fiber);    /* running or suspended (bool(fiber)) */
    int (*dead)(PyObject *fiber);      /* run() has finished */
    int (*is_main)(PyObject *fiber);   /* a thread's main fiber */
} Pycoro_CAPI;

#ifndef PYCORO_BUILDING_CORE   /* (defined only by pycoro's own capi.c) */

/* One table pointer per compilation unit that includes this header. */
static Pycoro_CAPI *Pycoro_API;

#define Pycoro_Check(op) PyObject_TypeCheck((op), Pycoro_API->Fiber_Type)

/* Import pycoro and fill Pycoro_API: 0, or -1 with an exception set. */
static inline int Pycoro_Import(void)
{
    Pycoro_CAPI *api = (Pycoro_CAPI *)PyCapsule_Import(PYCORO_CAPI_NAME, 0);
    if (!api)
        return -1;
    if (api->version < PYCORO_CAPI_VERSION) {
        PyErr_Format(PyExc_ImportError,
                     "pycoro C API version %d is older than the %d this extension was built for",
                     api->version, PYCORO_CAPI_VERSION);
        return -1;
    }
    Pycoro_API = api;
    return 0;
}

#endif /* PYCORO_BUILDING_CORE */

#ifdef __cplusplus
}
#endif

#endif /* PYCORO_H */
