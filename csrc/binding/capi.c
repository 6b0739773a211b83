/* The C API capsule (pycoro._pycoro._C_API, see pycoro/include/pycoro.h).
 *
 * switch/throw/parent run the very functions behind the Python methods:
 * their C pointers are taken from the Fiber type's method and getset
 * descriptors, so nothing in fiber.c needs to be exported and no Python
 * call happens in between. */
#include "fiber.h"

#define PYCORO_BUILDING_CORE
#include "pycoro.h"

static pyc_module_state *capi_st;     /* the module that filled the table */
static _PyCFunctionFastWithKeywords fiber_switch_impl;
static _PyCFunctionFast fiber_throw_impl;
static setter fiber_set_parent_impl;

static int check_fiber(PyObject *o)
{
    if (o && PyObject_TypeCheck(o, capi_st->fiber_type))
        return 0;
    PyErr_Format(PyExc_TypeError, "expected a pycoro.Fiber, not %.200s",
                 o ? Py_TYPE(o)->tp_name : "NULL");
    return -1;
}

static PyObject *capi_new(PyObject *run, PyObject *parent)
{
    return PyObject_CallFunctionObjArgs((PyObject *)capi_st->fiber_type,
                                        run ? run : Py_None, parent ? parent : Py_None, NULL);
}

static PyObject *capi_current(void)
{
    pyc_thread *th = pyc_thread_get(capi_st);
    return th ? Py_NewRef((PyObject *)th->current) : NULL;
}

static PyObject *capi_switch(PyObject *fiber, PyObject *args, PyObject *kwargs)
{
    if (check_fiber(fiber) < 0)
        return NULL;
    if (args && !PyTuple_Check(args)) {
        PyErr_SetString(PyExc_TypeError, "switch: args must be a tuple or NULL");
        return NULL;
    }
    if (kwargs && !PyDict_Check(kwargs)) {
        PyErr_SetString(PyExc_TypeError, "switch: kwargs must be a dict or NULL");
        return NULL;
    }
    Py_ssize_t nargs = args ? PyTuple_GET_SIZE(args) : 0;
    Py_ssize_t nkw = kwargs ? PyDict_GET_SIZE(kwargs) : 0;
    if (nkw == 0)
        return fiber_switch_impl(fiber, args ? &PyTuple_GET_ITEM(args, 0) : NULL, nargs, NULL);
    PyObject **stack = PyMem_Malloc((nargs + nkw) * sizeof(PyObject *));
    PyObject *kwnames = PyTuple_New(nkw);
    if (!stack || !kwnames) {
        PyMem_Free(stack);
        Py_XDECREF(kwnames);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        stack[i] = PyTuple_GET_ITEM(args, i);
    Py_ssize_t pos = 0, i = 0;
    PyObject *k, *v;
    while (PyDict_Next(kwargs, &pos, &k, &v)) {
        PyTuple_SET_ITEM(kwnames, i, Py_NewRef(k));
        stack[nargs + i] = Py_NewRef(v);   /* the dict may change while we are away */
        i++;
    }
    PyObject *r = fiber_switch_impl(fiber, stack, nargs, kwnames);
    for (i = 0; i < nkw; i++)
        Py_DECREF(stack[nargs + i]);
    Py_DECREF(kwnames);
    PyMem_Free(stack);
    return r;
}

static PyObject *capi_throw(PyObject *fiber, PyObject *typ, PyObject *val, PyObject *tb)
{
    if (check_fiber(fiber) < 0)
        return NULL;
    PyObject *argv[3] = {typ ? typ : capi_st->FiberExit, val ? val : Py_None, tb};
    return fiber_throw_impl(fiber, argv, tb ? 3 : 2);
}

static PyObject *capi_get_parent(PyObject *fiber)
{
    if (check_fiber(fiber) < 0)
        return NULL;
    PyFiber *p = ((PyFiber *)fiber)->parent;
    return p ? Py_NewRef((PyObject *)p) : NULL;
}

static int capi_set_parent(PyObject *fiber, PyObject *parent)
{
    if (check_fiber(fiber) < 0)
        return -1;
    return fiber_set_parent_impl(fiber, parent, NULL);
}

static int capi_started(PyObject *f)
{
    return check_fiber(f) < 0 ? -1 : ((PyFiber *)f)->core.state != PC_NEW;
}

static int capi_active(PyObject *f)
{
    if (check_fiber(f) < 0)
        return -1;
    pc_state s = ((PyFiber *)f)->core.state;
    return s == PC_RUNNING || s == PC_SUSPENDED;
}

static int capi_dead(PyObject *f)
{
    if (check_fiber(f) < 0)
        return -1;
    pc_state s = ((PyFiber *)f)->core.state;
    return s == PC_DEAD || s == PC_DYING;
}

static int capi_is_main(PyObject *f)
{
    return check_fiber(f) < 0 ? -1 : ((PyFiber *)f)->is_main;
}

static Pycoro_CAPI capi_table;

/* The C function behind a method or getset descriptor of the Fiber type. */
static PyObject *type_descr(PyTypeObject *tp, const char *name, PyTypeObject *kind)
{
    PyObject *d = PyDict_GetItemString(tp->tp_dict, name);     /* borrowed */
    if (!d || !Py_IS_TYPE(d, kind)) {
        PyErr_Format(PyExc_SystemError, "pycoro C API: Fiber.%s is not a C descriptor", name);
        return NULL;
    }
    return d;
}

int pyc_capi_add(PyObject *module, pyc_module_state *st)
{
    PyTypeObject *tp = st->fiber_type;
    PyObject *sw = type_descr(tp, "switch", &PyMethodDescr_Type);
    PyObject *th = type_descr(tp, "throw", &PyMethodDescr_Type);
    PyObject *pa = type_descr(tp, "parent", &PyGetSetDescr_Type);
    if (!sw || !th || !pa)
        return -1;
    PyMethodDef *msw = ((PyMethodDescrObject *)sw)->d_method;
    PyMethodDef *mth = ((PyMethodDescrObject *)th)->d_method;
    if (msw->ml_flags != (METH_FASTCALL | METH_KEYWORDS) || mth->ml_flags != METH_FASTCALL) {
        PyErr_SetString(PyExc_SystemError, "pycoro C API: unexpected switch/throw calling convention");
        return -1;
    }
    fiber_switch_impl = (_PyCFunctionFastWithKeywords)(void (*)(void))msw->ml_meth;
    fiber_throw_impl = (_PyCFunctionFast)(void (*)(void))mth->ml_meth;
    fiber_set_parent_impl = ((PyGetSetDescrObject *)pa)->d_getset->set;
    capi_st = st;

    capi_table.version = PYCORO_CAPI_VERSION;
    capi_table.Fiber_Type = tp;
    capi_table.FiberExit = st->FiberExit;
    capi_table.FiberError = st->FiberError;
    capi_table.new_fiber = capi_new;
    capi_table.current = capi_current;
    capi_table.switch_ = capi_switch;
    capi_table.throw_ = capi_throw;
    capi_table.get_parent = capi_get_parent;
    capi_table.set_parent = capi_set_parent;
    capi_table.started = capi_started;
    capi_table.active = capi_active;
    capi_table.dead = capi_dead;
    capi_table.is_main = capi_is_main;

    PyObject *capsule = PyCapsule_New(&capi_table, PYCORO_CAPI_NAME, NULL);
    if (!capsule)
        return -1;
    int rc = PyModule_AddObjectRef(module, "_C_API", capsule);
    Py_DECREF(capsule);
    return rc;
}
