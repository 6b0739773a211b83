/* module.c: the pycoro._pycoro extension module.
 *
 * Owns: the module definition (multi-phase init), its state (the types,
 * exceptions and interned strings every layer reads, mstate.h), and the
 * module-level functions (current, settrace, gettrace, the testing hook).
 * Calls: capi, greenlet_type, fiber, switch, thread, pystate.  Called by: CPython.
 *
 * One module per process: the thread-local record of each thread and the
 * C API's table point at one module's state, so a second instance (another
 * interpreter, or a re-import after the first was dropped while in use) is
 * refused with ImportError instead of mixing two.
 */
#include "capi.h"
#include "fiber.h"
#include "greenlet_type.h"

static pyc_module_state *state_of(PyObject *module)
{
    return (pyc_module_state *)PyModule_GetState(module);
}

/* The module instance in use (process-wide, see above). */
static PyObject *live_module;

static PyObject *mod_current(PyObject *module, PyObject *unused)
{
    (void)unused;
    pyc_thread *th = pyc_get_thread(state_of(module));
    return th ? Py_NewRef((PyObject *)th->current) : NULL;
}

static PyObject *mod_settrace(PyObject *module, PyObject *fn)
{
    pyc_thread *th = pyc_get_thread(state_of(module));
    if (!th)
        return NULL;
    if (fn == Py_None)
        fn = NULL;
    else if (!PyCallable_Check(fn)) {
        PyErr_Format(PyExc_TypeError, "settrace() argument must be callable or None, not %.200s",
                     Py_TYPE(fn)->tp_name);
        return NULL;
    }
    PyObject *old = th->trace;
    th->trace = Py_XNewRef(fn);
    return old ? old : Py_NewRef(Py_None);
}

static PyObject *mod_gettrace(PyObject *module, PyObject *unused)
{
    (void)unused;
    pyc_thread *th = pyc_get_thread(state_of(module));
    if (!th)
        return NULL;
    return Py_NewRef(th->trace ? th->trace : Py_None);
}

static PyObject *mod_inject_alloc_failure(PyObject *module, PyObject *arg)
{
    (void)module;
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    pyc_inject_alloc_failure(n);
    Py_RETURN_NONE;
}

static PyObject *mod_counts(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    return Py_BuildValue("{sn}", "main_fibers", pyc_main_fiber_count());
}

static PyObject *mod_greenlet_getcurrent(PyObject *module, PyObject *unused)
{
    (void)unused;
    return pyc_greenlet_getcurrent(state_of(module));
}

static PyObject *mod_greenlet_adopt(PyObject *module, PyObject *fiber)
{
    return Py_NewRef(pyc_greenlet_adopt(state_of(module), fiber));
}

/* In gc.callbacks: brackets every collection of the calling thread (see
 * pyc_tl_in_gc, thread.h).  At "stop" the collector's working lists are
 * gone, so the fibers it finalized can be unwound: before gc.collect()
 * returns, as when no collection defers them. */
static PyObject *mod_gc_phase(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs < 1 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "_gc_phase(phase, info)");
        return NULL;
    }
    if (PyUnicode_CompareWithASCIIString(args[0], "start") == 0) {
        pyc_tl_in_gc++;
    } else if (PyUnicode_CompareWithASCIIString(args[0], "stop") == 0 && pyc_tl_in_gc > 0) {
        if (--pyc_tl_in_gc == 0 && pyc_tl_thread)
            pyc_kill_pending(pyc_tl_thread);
    }
    Py_RETURN_NONE;
}

/* Put _gc_phase in gc.callbacks (once per module). */
static int register_gc_phase(PyObject *m)
{
    PyObject *cb = PyObject_GetAttrString(m, "_gc_phase");
    PyObject *gc = cb ? PyImport_ImportModule("gc") : NULL;
    PyObject *callbacks = gc ? PyObject_GetAttrString(gc, "callbacks") : NULL;
    int rc = callbacks && PyList_Check(callbacks) ? PyList_Append(callbacks, cb) : -1;
    if (rc < 0 && !PyErr_Occurred())
        PyErr_SetString(PyExc_ImportError, "pycoro: gc.callbacks is not a list");
    Py_XDECREF(callbacks);
    Py_XDECREF(gc);
    Py_XDECREF(cb);
    return rc;
}

/* greenlet._greenlet.set_thread_local(key, value): an entry in the calling
 * thread's PyThreadState dict (what greenlet's function does). */
static PyObject *mod_set_thread_local(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "set_thread_local(key, value)");
        return NULL;
    }
    PyObject *d = PyThreadState_GetDict();
    if (!d) {
        PyErr_SetString(PyExc_RuntimeError, "no thread-state dictionary");
        return NULL;
    }
    if (PyDict_SetItem(d, args[0], args[1]) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"current", mod_current, METH_NOARGS, "current()\n--\n\nThe running fiber of this thread."},
    {"settrace", mod_settrace, METH_O,
     "settrace(fn)\n--\n\nCall fn(event, (origin, target)) on every switch and throw of this "
     "thread; returns the previous function.  Switches made while a trace function runs (by "
     "it, or by code it calls) are not traced."},
    {"gettrace", mod_gettrace, METH_NOARGS, "gettrace()\n--\n\nThis thread's switch tracer."},
    {"_inject_alloc_failure", mod_inject_alloc_failure, METH_O,
     "Testing aid: fail the n-th allocation of the C core from now (0: never)."},
    {"greenlet_getcurrent", mod_greenlet_getcurrent, METH_NOARGS,
     "greenlet_getcurrent()\n--\n\ngreenlet.getcurrent(): the running fiber, a thread's main "
     "fiber made a greenlet."},
    {"_greenlet_adopt", mod_greenlet_adopt, METH_O,
     "The argument; a thread's plain main Fiber is made a greenlet in place."},
    {"_gc_phase", (PyCFunction)(void (*)(void))mod_gc_phase, METH_FASTCALL,
     "In gc.callbacks: no switch while this thread collects; finalized fibers unwind at stop."},
    {"_set_thread_local", (PyCFunction)(void (*)(void))mod_set_thread_local, METH_FASTCALL,
     "_set_thread_local(key, value)\n--\n\nSet key in this thread's PyThreadState dict."},
    {"_counts", mod_counts, METH_NOARGS,
     "Process-wide counts: {'main_fibers': live main fibers}."},
    {0},
};

static int module_exec(PyObject *m)
{
    pyc_module_state *st = state_of(m);
    if (pyc_pystate_check_build() < 0)
        return -1;
    if (live_module) {
        PyErr_SetString(PyExc_ImportError,
                        "pycoro._pycoro is already loaded in this process (a second interpreter, "
                        "or a re-import while the first module is alive): it supports one");
        return -1;
    }
    st->fiber_type = (PyTypeObject *)PyType_FromModuleAndSpec(m, &pyc_fiber_spec, NULL);
    if (!st->fiber_type || PyModule_AddType(m, st->fiber_type) < 0)
        return -1;
    st->FiberExit = PyErr_NewExceptionWithDoc(
        "pycoro.FiberExit",
        "Thrown into a suspended fiber to end it (e.g. when it is collected); "
        "a fiber that lets it propagate ends normally.",
        PyExc_BaseException, NULL);
    st->FiberError = PyErr_NewExceptionWithDoc(
        "pycoro.FiberError", "An invalid switch (another thread's fiber, a finalizing fiber, ...).",
        PyExc_RuntimeError, NULL);
    if (!st->FiberExit || !st->FiberError)
        return -1;
    if (PyModule_AddObjectRef(m, "FiberExit", st->FiberExit) < 0
        || PyModule_AddObjectRef(m, "FiberError", st->FiberError) < 0)
        return -1;
    st->str_run = PyUnicode_InternFromString("run");
    st->str_switch = PyUnicode_InternFromString("switch");
    st->str_throw = PyUnicode_InternFromString("throw");
    st->thread_key = PyUnicode_InternFromString("pycoro.thread");
    st->empty_tuple = PyTuple_New(0);
    if (!st->str_run || !st->str_switch || !st->str_throw || !st->thread_key || !st->empty_tuple)
        return -1;
    if (pyc_capi_add(m, st) < 0 || pyc_greenlet_add(m, st) < 0)
        return -1;
    if (register_gc_phase(m) < 0)
        return -1;
    live_module = m;                        /* borrowed: cleared by module_free */
    return 0;
}

/* Every object the module state holds, traversed and cleared from this one
 * list (a field added to the state and to only one of the two would leak
 * or dangle).  The strings and the tuple cannot be in a cycle; visiting
 * them costs nothing and keeps the list single. */
static const size_t state_objects[] = {
    offsetof(pyc_module_state, fiber_type),
    offsetof(pyc_module_state, greenlet_type),
    offsetof(pyc_module_state, FiberExit),
    offsetof(pyc_module_state, FiberError),
    offsetof(pyc_module_state, str_run),
    offsetof(pyc_module_state, str_switch),
    offsetof(pyc_module_state, str_throw),
    offsetof(pyc_module_state, thread_key),
    offsetof(pyc_module_state, empty_tuple),
};
#define N_STATE_OBJECTS (sizeof state_objects / sizeof state_objects[0])

static PyObject **state_object(PyObject *m, size_t i)
{
    return (PyObject **)((char *)state_of(m) + state_objects[i]);
}

static int module_traverse(PyObject *m, visitproc visit, void *arg)
{
    for (size_t i = 0; i < N_STATE_OBJECTS; i++)
        Py_VISIT(*state_object(m, i));
    return 0;
}

static int module_clear(PyObject *m)
{
    for (size_t i = 0; i < N_STATE_OBJECTS; i++)
        Py_CLEAR(*state_object(m, i));
    return 0;
}

static void module_free(void *m)
{
    module_clear((PyObject *)m);
    pyc_capi_clear(state_of((PyObject *)m));
    pyc_greenlet_clear(state_of((PyObject *)m));
    if (live_module == m)
        live_module = NULL;
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
#ifdef Py_mod_gil
    /* 3.13+: free-threaded builds keep the GIL off (pystate.h says what is
     * shared between threads and how it is protected); builds with a GIL
     * ignore the slot. */
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

struct PyModuleDef pyc_module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pycoro._pycoro",
    .m_doc = "Stack-copying fibers for CPython (the C binding of pycoro).",
    .m_size = sizeof(pyc_module_state),
    .m_methods = module_methods,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC PyInit__pycoro(void) { return PyModuleDef_Init(&pyc_module_def); }
