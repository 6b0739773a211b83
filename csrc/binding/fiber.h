/* fiber: the pycoro.Fiber type and the lifetime of fibers and threads.
 *
 * Owns: the type (construction, attributes, switch()/throw(), the GC's
 * traverse/clear, finalization: a suspended fiber nobody can resume is
 * unwound with FiberExit, in its own thread), each thread's record and main
 * fiber (made on first use, ended with the thread), and the fibers left
 * suspended when their thread ended ("orphans": their frames stay readable;
 * what they hold is released when they are dropped or collected).
 * Calls: switch, thread, pystate, CPython.  Called by: capi, module.
 */
#ifndef PYCORO_FIBER_H
#define PYCORO_FIBER_H

#include "switch.h"

extern PyType_Spec pyc_fiber_spec;

/* The module's definition (module.c), by which a type finds its state. */
extern struct PyModuleDef pyc_module_def;

/* The module state a type deriving from Fiber belongs to (walks its MRO,
 * static C/Cython subclasses included); NULL with TypeError otherwise. */
pyc_module_state *pyc_state_of_type(PyTypeObject *tp);

/* This thread's record, made with its main fiber on first use.  NULL with
 * an exception.  Also unwinds the fibers other threads handed over. */
pyc_thread *pyc_get_thread(pyc_module_state *st);

/* The C API's side of the type (same code as the Python methods). */
PyObject *pyc_fiber_new(PyTypeObject *type, PyObject *run, PyObject *parent);
PyObject *pyc_fiber_switch(PyObject *fiber, PyObject *args, PyObject *kwargs);
PyObject *pyc_fiber_throw(PyObject *fiber, PyObject *typ, PyObject *val, PyObject *tb);
int pyc_fiber_set_parent(PyObject *fiber, PyObject *parent);
/* fiber.parent: a new reference, or NULL (no exception) for a main fiber. */
PyFiber *pyc_fiber_get_parent(PyObject *fiber);
/* fiber.run = run, set in the C slot (a subclass's run method is not
 * shadowed): 0, or -1 with AttributeError once started. */
int pyc_fiber_set_run(PyObject *fiber, PyObject *run);

/* Live main fibers in the process (greenlet reports this count). */
Py_ssize_t pyc_main_fiber_count(void);

#endif
