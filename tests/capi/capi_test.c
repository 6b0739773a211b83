/* Test extension driving pycoro fibers only through the C API (pycoro.h). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pycoro.h>

/* run of the ping-pong fiber: receives an int, sends back int + 1, forever
 * (until it is thrown FiberExit). */
static PyObject *pong_run(PyObject *Py_UNUSED(self), PyObject *arg)
{
    PyObject *me = Pycoro_API->current();
    if (!me)
        return NULL;
    PyObject *parent = Pycoro_API->get_parent(me);
    Py_DECREF(me);
    if (!parent)
        return PyErr_Occurred() ? NULL : PyErr_Format(PyExc_RuntimeError, "no parent");
    PyObject *v = Py_NewRef(arg);
    for (;;) {
        long n = PyLong_AsLong(v);
        Py_DECREF(v);
        if (n == -1 && PyErr_Occurred())
            break;
        PyObject *args = Py_BuildValue("(l)", n + 1);
        if (!args)
            break;
        v = Pycoro_API->switch_(parent, args, NULL);
        Py_DECREF(args);
        if (!v)
            break;                      /* thrown into: end with it */
    }
    Py_DECREF(parent);
    return NULL;
}

static PyMethodDef pong_def = {"pong_run", pong_run, METH_O, NULL};

/* pingpong(n): n round trips main -> fiber -> main; returns the last value. */
static PyObject *pingpong(PyObject *Py_UNUSED(m), PyObject *arg)
{
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    PyObject *run = PyCFunction_New(&pong_def, NULL);
    if (!run)
        return NULL;
    PyObject *f = Pycoro_API->new_fiber(run, NULL);
    Py_DECREF(run);
    if (!f)
        return NULL;
    if (Pycoro_API->started(f) != 0 || Pycoro_API->active(f) != 0 || Pycoro_API->dead(f) != 0) {
        Py_DECREF(f);
        return PyErr_Format(PyExc_AssertionError, "new fiber: wrong state");
    }
    long last = -1;
    for (long i = 0; i < n; i++) {
        PyObject *args = Py_BuildValue("(l)", i);
        PyObject *r = args ? Pycoro_API->switch_(f, args, NULL) : NULL;
        Py_XDECREF(args);
        if (!r) {
            Py_DECREF(f);
            return NULL;
        }
        last = PyLong_AsLong(r);
        Py_DECREF(r);
        if (last != i + 1) {
            Py_DECREF(f);
            return PyErr_Format(PyExc_AssertionError, "round %ld: got %ld", i, last);
        }
    }
    if (n > 0 && (Pycoro_API->started(f) != 1 || Pycoro_API->active(f) != 1)) {
        Py_DECREF(f);
        return PyErr_Format(PyExc_AssertionError, "suspended fiber: wrong state");
    }
    /* End it: FiberExit (typ NULL) ends the run normally; the value is the
     * exception instance. */
    PyObject *r = Pycoro_API->throw_(f, NULL, NULL, NULL);
    int ok = r && PyObject_TypeCheck(r, (PyTypeObject *)Pycoro_API->FiberExit)
             && Pycoro_API->dead(f) == 1 && Pycoro_API->active(f) == 0;
    Py_XDECREF(r);
    Py_DECREF(f);
    if (!r)
        return NULL;
    if (!ok)
        return PyErr_Format(PyExc_AssertionError, "fiber did not end with FiberExit");
    return PyLong_FromLong(last);
}

/* run of the catcher fiber: switch back, then report what was thrown in. */
static PyObject *catch_run(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(noargs))
{
    PyObject *me = Pycoro_API->current();
    PyObject *parent = me ? Pycoro_API->get_parent(me) : NULL;
    Py_XDECREF(me);
    if (!parent)
        return NULL;
    PyObject *r = Pycoro_API->switch_(parent, NULL, NULL);   /* "ready" = () */
    Py_DECREF(parent);
    if (r) {
        Py_DECREF(r);
        return PyUnicode_FromString("not thrown");
    }
    if (!PyErr_ExceptionMatches(PyExc_ValueError))
        return NULL;
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    PyErr_NormalizeException(&et, &ev, &etb);
    PyObject *msg = PyObject_Str(ev);
    Py_XDECREF(et);
    Py_XDECREF(ev);
    Py_XDECREF(etb);
    if (!msg)
        return NULL;
    PyObject *res = PyUnicode_FromFormat("caught ValueError: %U", msg);
    Py_DECREF(msg);
    return res;
}

static PyMethodDef catch_def = {"catch_run", catch_run, METH_NOARGS, NULL};

/* throw_value_error(msg): start a fiber, throw ValueError(msg) into it
 * through the C API; returns what its run returned. */
static PyObject *throw_value_error(PyObject *Py_UNUSED(m), PyObject *msg)
{
    PyObject *run = PyCFunction_New(&catch_def, NULL);
    PyObject *f = run ? Pycoro_API->new_fiber(run, NULL) : NULL;
    Py_XDECREF(run);
    if (!f)
        return NULL;
    PyObject *r = Pycoro_API->switch_(f, NULL, NULL);
    if (!r)
        goto fail;
    Py_DECREF(r);
    r = Pycoro_API->throw_(f, PyExc_ValueError, msg, NULL);
    if (r && Pycoro_API->dead(f) != 1) {
        Py_CLEAR(r);
        PyErr_SetString(PyExc_AssertionError, "fiber should be dead");
    }
fail:
    Py_DECREF(f);
    return r;
}

/* switch_kwargs(fiber, args, kwargs): Pycoro_API->switch_ as is. */
static PyObject *switch_kwargs(PyObject *Py_UNUSED(m), PyObject *a)
{
    PyObject *f, *args, *kwargs;
    if (!PyArg_ParseTuple(a, "OOO", &f, &args, &kwargs))
        return NULL;
    return Pycoro_API->switch_(f, args == Py_None ? NULL : args,
                               kwargs == Py_None ? NULL : kwargs);
}

static PyObject *throw_(PyObject *Py_UNUSED(m), PyObject *a)
{
    PyObject *f, *typ = NULL, *val = NULL, *tb = NULL;
    if (!PyArg_ParseTuple(a, "O|OOO", &f, &typ, &val, &tb))
        return NULL;
    return Pycoro_API->throw_(f, typ, val, tb);
}

static PyObject *get_parent(PyObject *Py_UNUSED(m), PyObject *f)
{
    PyObject *p = Pycoro_API->get_parent(f);
    if (!p && !PyErr_Occurred())
        Py_RETURN_NONE;
    return p;
}

static PyObject *set_parent(PyObject *Py_UNUSED(m), PyObject *a)
{
    PyObject *f, *p;
    if (!PyArg_ParseTuple(a, "OO", &f, &p))
        return NULL;
    if (Pycoro_API->set_parent(f, p) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *state(PyObject *Py_UNUSED(m), PyObject *f)
{
    int s = Pycoro_API->started(f), a = Pycoro_API->active(f);
    int d = Pycoro_API->dead(f), mn = Pycoro_API->is_main(f);
    if (s < 0 || a < 0 || d < 0 || mn < 0)
        return NULL;
    return Py_BuildValue("{s:O,s:O,s:O,s:O}", "started", s ? Py_True : Py_False,
                         "active", a ? Py_True : Py_False, "dead", d ? Py_True : Py_False,
                         "main", mn ? Py_True : Py_False);
}

static PyObject *new_fiber(PyObject *Py_UNUSED(m), PyObject *a)
{
    PyObject *run = NULL, *parent = NULL;
    if (!PyArg_ParseTuple(a, "|OO", &run, &parent))
        return NULL;
    return Pycoro_API->new_fiber(run == Py_None ? NULL : run, parent == Py_None ? NULL : parent);
}

static PyObject *current(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(noargs)) { return Pycoro_API->current(); }

static PyObject *types(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(noargs))
{
    return Py_BuildValue("(OOOi)", (PyObject *)Pycoro_API->Fiber_Type, Pycoro_API->FiberExit,
                         Pycoro_API->FiberError, Pycoro_API->version);
}

static PyMethodDef methods[] = {
    {"pingpong", pingpong, METH_O, NULL},
    {"throw_value_error", throw_value_error, METH_O, NULL},
    {"switch_kwargs", switch_kwargs, METH_VARARGS, NULL},
    {"throw", throw_, METH_VARARGS, NULL},
    {"get_parent", get_parent, METH_O, NULL},
    {"set_parent", set_parent, METH_VARARGS, NULL},
    {"state", state, METH_O, NULL},
    {"new_fiber", new_fiber, METH_VARARGS, NULL},
    {"current", current, METH_NOARGS, NULL},
    {"types", types, METH_NOARGS, NULL},
    {0},
};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "_pycoro_capi_test", NULL, -1, methods,
                                     NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__pycoro_capi_test(void)
{
    if (Pycoro_Import() < 0)
        return NULL;
    PyObject *m = PyModule_Create(&moddef);
#ifdef Py_GIL_DISABLED
    /* Like any C user of pycoro on a free-threaded build: keep the GIL off. */
    if (m && PyUnstable_Module_SetGIL(m, Py_MOD_GIL_NOT_USED) < 0)
        Py_CLEAR(m);
#endif
    return m;
}
