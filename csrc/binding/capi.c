/* capi.c: pycoro's C API table (pycoro/include/pycoro.h), in the capsule
 * pycoro._pycoro._C_API.
 *
 * Owns: the table and its argument checks.  Each entry runs the same code
 * as the Python method or attribute it mirrors (fiber.h), with no Python
 * call in between.  The table lives in the module state; the functions
 * find it through this static pointer to the one module that filled it (a
 * C caller has no module at hand; the module refuses a second interpreter).
 * Calls: fiber.  Called by: module, greenlet_type (pyc_capi_publish).
 */
#include "capi.h"
#include "fiber.h"

#define PYCORO_BUILDING_CORE
#include "pycoro.h"

static pyc_module_state *capi_st;

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
    return pyc_fiber_new(capi_st->fiber_type, run, parent);
}

static PyObject *capi_current(void)
{
    pyc_thread *th = pyc_get_thread(capi_st);
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
    return pyc_fiber_switch(fiber, args, kwargs);
}

static PyObject *capi_throw(PyObject *fiber, PyObject *typ, PyObject *val, PyObject *tb)
{
    if (check_fiber(fiber) < 0)
        return NULL;
    return pyc_fiber_throw(fiber, typ, val, tb);
}

static PyObject *capi_get_parent(PyObject *fiber)
{
    if (check_fiber(fiber) < 0)
        return NULL;
    return (PyObject *)pyc_fiber_get_parent(fiber);
}

static int capi_set_parent(PyObject *fiber, PyObject *parent)
{
    if (check_fiber(fiber) < 0)
        return -1;
    return pyc_fiber_set_parent(fiber, parent);
}

static int capi_started(PyObject *f)
{
    return check_fiber(f) < 0 ? -1 : pyc_impl(f)->core.state != PC_NEW;
}

static int capi_active(PyObject *f)
{
    return check_fiber(f) < 0 ? -1 : pyc_fiber_is_active(pyc_impl(f));
}

static int capi_dead(PyObject *f)
{
    return check_fiber(f) < 0 ? -1 : pyc_fiber_is_dead(pyc_impl(f));
}

static int capi_is_main(PyObject *f)
{
    return check_fiber(f) < 0 ? -1 : pyc_impl(f)->is_main;
}

int pyc_capi_add(PyObject *module, pyc_module_state *st)
{
    if (capi_st) {
        PyErr_SetString(PyExc_ImportError, "pycoro: the C API is already filled by another module");
        return -1;
    }
    Pycoro_CAPI *t = PyMem_Calloc(1, sizeof *t);
    if (!t) {
        PyErr_NoMemory();
        return -1;
    }
    t->version = PYCORO_CAPI_VERSION;
    t->Fiber_Type = st->fiber_type;
    t->FiberExit = st->FiberExit;
    t->FiberError = st->FiberError;
    t->new_fiber = capi_new;
    t->current = capi_current;
    t->switch_ = capi_switch;
    t->throw_ = capi_throw;
    t->get_parent = capi_get_parent;
    t->set_parent = capi_set_parent;
    t->started = capi_started;
    t->active = capi_active;
    t->dead = capi_dead;
    t->is_main = capi_is_main;
    st->capi_table = t;
    if (pyc_capi_publish(module, "_C_API", PYCORO_CAPI_NAME, t) < 0)
        return -1;
    capi_st = st;
    return 0;
}

int pyc_capi_publish(PyObject *module, const char *attr, const char *name, void *table)
{
    PyObject *capsule = PyCapsule_New(table, name, NULL);
    if (!capsule)
        return -1;
    int rc = PyModule_AddObjectRef(module, attr, capsule);
    Py_DECREF(capsule);
    return rc;
}

void pyc_capi_clear(pyc_module_state *st)
{
    if (capi_st == st)
        capi_st = NULL;
    PyMem_Free(st->capi_table);
    st->capi_table = NULL;
}
