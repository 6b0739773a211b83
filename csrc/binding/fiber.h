/* The CPython binding: shared declarations of module.c, thread.c, fiber.c. */
#ifndef PYCORO_FIBER_H
#define PYCORO_FIBER_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "pycoro_core.h"
#include "pystate.h"

typedef struct pyc_thread pyc_thread;

/* How the values of a switch travel to the fiber that resumes. */
typedef enum {
    PASS_VALUE,   /* `value` is what switch() returns; a new fiber gets run(value) */
    PASS_ARGS,    /* `value` is an args tuple, `kwargs` a dict or NULL */
    PASS_ERROR    /* an exception is set in the thread state */
} pass_kind;

typedef struct PyFiber {
    PyObject_HEAD
    pc_fiber core;
    pyc_thread *thread;      /* owning thread (counted reference) */
    struct PyFiber *parent;  /* strong; NULL only for a main fiber */
    PyObject *run;           /* the callable until the fiber starts */
    PyObject *context;       /* context of a NEW fiber (NULL: fresh one) */
    PyObject *dict;
    PyObject *weakreflist;
    pyc_pystate pystate;     /* interpreter state while suspended */
    struct {                 /* what run() was called with, until it returns */
        PyObject *run, *value, *kwargs;
        pass_kind kind;
    } call;
    unsigned char is_main;
    unsigned char finalizing;
} PyFiber;

typedef struct {
    PyTypeObject *fiber_type;
    PyObject *FiberExit;
    PyObject *FiberError;
    PyObject *str_run;
    PyObject *str_switch;
    PyObject *str_throw;
    PyObject *thread_key;
    PyObject *empty_tuple;   /* what switch() with no arguments delivers */
} pyc_module_state;

struct pyc_thread {
    pc_thread core;
    PyThreadState *ts;
    pyc_module_state *mstate;
    PyFiber *main;           /* strong while the thread lives */
    PyFiber *current;        /* strong: the running fiber */
    PyFiber *origin;         /* after a switch: who switched to us (borrowed) */
    PyObject *trace;         /* settrace() function or NULL */
    PyObject *pending_kill;  /* list of fibers another thread dropped */
    /* in flight between the two sides of a switch */
    pass_kind pass;
    PyObject *pass_value;
    PyObject *pass_kwargs;
    PyObject *start_run;     /* the callable a starting fiber runs */
    int untraced;            /* the switch was made inside a tracer: no event */
    pyc_chunk_pool pool;
    Py_ssize_t refcnt;       /* one per fiber of this thread + one while alive */
    int alive;
};

#define PYC_FIBER(core_ptr) \
    ((PyFiber *)((char *)(core_ptr) - offsetof(PyFiber, core)))

extern PyType_Spec pyc_fiber_spec;

/* thread.c */
/* This thread's state, or NULL before its first use and after it ended.
 * initial-exec: one %fs-relative load, no __tls_get_addr call. */
extern __attribute__((tls_model("initial-exec"))) _Thread_local pyc_thread *pyc_tl_thread;
pyc_thread *pyc_thread_get(pyc_module_state *st);    /* NULL + error */
void pyc_thread_decref(pyc_thread *th);
/* Testing aid: fail the n-th core allocation from now (0: never). */
void pyc_inject_alloc_failure(long nth);

/* fiber.c */
PyFiber *pyc_fiber_new_main(pyc_module_state *st, pyc_thread *th);
pyc_module_state *pyc_state_of_type(PyTypeObject *tp);
void pyc_kill_pending(pyc_thread *th);

/* chunks.c: cache overflow data-stack chunks (process-wide, idempotent) */
void pyc_chunk_cache_install(void);

/* capi.c: adds the pycoro._pycoro._C_API capsule (pycoro/include/pycoro.h) */
int pyc_capi_add(PyObject *module, pyc_module_state *st);

#endif
