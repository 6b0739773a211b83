/* greenlet_type.c: greenlet 3's type and C ABI over pycoro.Fiber (see
 * greenlet_type.h for what it owns; it calls fiber and thread).
 *
 * The capsule's functions get no module from their caller (C code built
 * against greenlet.h calls them directly), so they find the module state
 * through `gl_st`, set by the one module that made the capsule (module.c
 * refuses a second one). */
#include "greenlet_type.h"
#include "capi.h"
#include "fiber.h"

#include "structmember.h"

/* The slots of greenlet.h's _PyGreenlet_API, in that header's order (the
 * order is the ABI: gevent and every C user index the array). */
enum {
    GL_TYPE,
    GL_ERROR,
    GL_EXIT,
    GL_NEW,
    GL_GETCURRENT,
    GL_THROW,
    GL_SWITCH,
    GL_SETPARENT,
    GL_MAIN,
    GL_STARTED,
    GL_ACTIVE,
    GL_GETPARENT,
    GL_API_POINTERS /* 12 */
};

#define GL_CAPSULE_NAME "greenlet._C_API"

static pyc_module_state *gl_st;

/* ------------------------------------------------------------------ */
/* adoption of main fibers                                              */

PyObject *pyc_greenlet_adopt(pyc_module_state *st, PyObject *o)
{
    PyTypeObject *g = st->greenlet_type;
    if (g && o && Py_TYPE(o) == st->fiber_type && pyc_impl(o)->is_main) {
        /* What `o.__class__ = greenlet` does: both are heap types with the
         * same layout, and an instance holds a reference to its type.  Any
         * thread may adopt a main fiber (its parent link leads there), so
         * on free-threaded builds two could at once: checked again in the
         * object's critical section, so that it happens once. */
        int adopted = 0;
        PYC_LOCKED(o);
        if (Py_TYPE(o) == st->fiber_type) {
            Py_INCREF(g);
            Py_SET_TYPE(o, g);
            adopted = 1;
        }
        PYC_UNLOCKED();
        if (adopted)
            Py_DECREF(st->fiber_type);
    }
    return o;
}

PyObject *pyc_greenlet_getcurrent(pyc_module_state *st)
{
    /* greenlet's rule: objects torn down by the interpreter's finalization
     * get an exception, not a greenlet they could switch to. */
    if (pyc_is_finalizing()) {
        PyErr_SetString(PyExc_RuntimeError, "greenlet is being finalized");
        return NULL;
    }
    pyc_thread *th = pyc_get_thread(st);
    if (!th)
        return NULL;
    return Py_NewRef(pyc_greenlet_adopt(st, (PyObject *)th->current));
}

/* ------------------------------------------------------------------ */
/* the type: construction and `parent` with greenlet's rules            */


/* g.parent = value, greenlet's checks and words first. */
static int greenlet_set_parent(pyc_module_state *st, PyObject *self, PyObject *value)
{
    if (!value) {
        PyErr_SetString(PyExc_AttributeError, "can't delete attribute");
        return -1;
    }
    /* Any fiber is accepted (a thread's main fiber may not be adopted yet);
     * greenlet's checker names greenlets. */
    if (!PyObject_TypeCheck(value, st->fiber_type)) {
        PyErr_Format(PyExc_TypeError, "GreenletChecker: Expected any type of greenlet, not %.200s",
                     Py_TYPE(value)->tp_name);
        return -1;
    }
    if (pyc_impl(self)->is_main) {
        PyErr_SetString(PyExc_AttributeError, "cannot set the parent of a main greenlet");
        return -1;
    }
    return pyc_fiber_set_parent(self, value);
}

static PyObject *greenlet_get_parent_attr(PyObject *self, void *c)
{
    (void)c;
    PyFiber *p = pyc_fiber_get_parent(self);
    if (!p)
        Py_RETURN_NONE;
    pyc_module_state *st = pyc_state_of_type(Py_TYPE(self));
    if (!st) {
        Py_DECREF(p);
        return NULL;
    }
    return pyc_greenlet_adopt(st, (PyObject *)p);
}

static int greenlet_set_parent_attr(PyObject *self, PyObject *value, void *c)
{
    (void)c;
    pyc_module_state *st = pyc_state_of_type(Py_TYPE(self));
    return st ? greenlet_set_parent(st, self, value) : -1;
}

/* greenlet(run=<none>, parent=None): an explicit run=None is stored (the
 * first switch then fails with TypeError); an omitted run leaves it unset
 * (g.run raises AttributeError unless a subclass defines run). */
static int greenlet_init(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"run", "parent", NULL};
    PyObject *run = NULL, *parent = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OO:greenlet", kwlist, &run, &parent))
        return -1;
    if (run && pyc_fiber_set_run(self, run) < 0)
        return -1;
    if (parent && parent != Py_None) {
        pyc_module_state *st = pyc_state_of_type(Py_TYPE(self));
        if (!st || greenlet_set_parent(st, self, parent) < 0)
            return -1;
    }
    return 0;
}

static PyGetSetDef greenlet_getset[] = {
    {"parent", greenlet_get_parent_attr, greenlet_set_parent_attr,
     "The greenlet that receives run()'s result or exception.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

/* Py_tp_dealloc is filled with Fiber's own in pyc_greenlet_add: a type
 * made from a spec without one gets subtype_dealloc, which is only right as
 * the dealloc of a Python-level class.  A C or Cython subclass (gevent's
 * Greenlet) calls its base's tp_dealloc from its own; subtype_dealloc would
 * call that subclass's dealloc again, and again. */
#define GREENLET_DEALLOC_SLOT 0
static PyType_Slot greenlet_slots[] = {
    {Py_tp_dealloc, NULL},
    {Py_tp_doc, "greenlet(run=None, parent=None)\n--\n\n"
                "A greenlet: pycoro.Fiber with greenlet 3's API and C layout."},
    {Py_tp_init, greenlet_init},
    {Py_tp_getset, greenlet_getset},
    {0, NULL},
};

static PyType_Spec greenlet_spec = {
    /* greenlet's own name, so repr, pickling errors and Cython's type
     * import (module "greenlet", name "greenlet") see what they expect. */
    .name = "greenlet.greenlet",
    .basicsize = sizeof(PyFiber),           /* 40 on 64-bit: greenlet's */
    /* HAVE_GC, traverse and clear are inherited from Fiber. */
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .slots = greenlet_slots,
};

/* ------------------------------------------------------------------ */
/* the C ABI (greenlet.h); each entry behaves as greenlet 3's           */

static int is_greenlet(PyObject *o)
{
    return o && PyObject_TypeCheck(o, gl_st->greenlet_type);
}

static PyObject *abi_new(PyObject *run, PyObject *parent)
{
    PyTypeObject *tp = gl_st->greenlet_type;
    PyObject *g = tp->tp_new(tp, gl_st->empty_tuple, NULL);
    if (!g)
        return NULL;
    if ((run && pyc_fiber_set_run(g, run) < 0)
        || (parent && greenlet_set_parent(gl_st, g, parent) < 0)) {
        Py_DECREF(g);
        return NULL;
    }
    return g;
}

static PyObject *abi_getcurrent(void)
{
    return pyc_greenlet_getcurrent(gl_st);
}

/* g.throw(typ, val, tb) as the type defines it (compat adds greenlet's
 * rules for unstarted and dead greenlets in Python; without them it is
 * Fiber's throw). */
static PyObject *abi_throw(PyObject *g, PyObject *typ, PyObject *val, PyObject *tb)
{
    if (!is_greenlet(g)) {
        PyErr_BadArgument();
        return NULL;
    }
    PyObject *meth = PyObject_GetAttr((PyObject *)gl_st->greenlet_type, gl_st->str_throw);
    if (!meth)
        return NULL;
    PyObject *r = PyObject_CallFunctionObjArgs(meth, g, typ ? typ : Py_None, val ? val : Py_None,
                                               tb ? tb : Py_None, NULL);
    Py_DECREF(meth);
    return r;
}

static PyObject *abi_switch(PyObject *g, PyObject *args, PyObject *kwargs)
{
    if (!is_greenlet(g)) {
        PyErr_BadArgument();
        return NULL;
    }
    if (args && !PyTuple_Check(args)) {
        PyErr_BadArgument();
        return NULL;
    }
    if (kwargs && (!PyDict_Check(kwargs) || PyDict_GET_SIZE(kwargs) == 0))
        kwargs = NULL;                      /* as greenlet: ignored */
    return pyc_fiber_switch(g, args, kwargs);
}

static int abi_setparent(PyObject *g, PyObject *parent)
{
    if (!is_greenlet(g)) {
        PyErr_SetString(PyExc_TypeError, "parent must be a greenlet");
        return -1;
    }
    return greenlet_set_parent(gl_st, g, parent);
}

/* greenlet's predicates take any PyGreenlet* unchecked; here a non-fiber
 * gets TypeError and -1 instead of a crash. */
static pyc_fiber *checked_impl(PyObject *g)
{
    if (g && PyObject_TypeCheck(g, gl_st->fiber_type))
        return pyc_impl(g);
    PyErr_Format(PyExc_TypeError, "expected a greenlet, not %.200s",
                 g ? Py_TYPE(g)->tp_name : "NULL");
    return NULL;
}

static int abi_main(PyObject *g)
{
    pyc_fiber *f = checked_impl(g);
    return f ? f->is_main : -1;
}

static int abi_started(PyObject *g)
{
    pyc_fiber *f = checked_impl(g);
    return f ? f->core.state != PC_NEW : -1;
}

static int abi_active(PyObject *g)
{
    pyc_fiber *f = checked_impl(g);
    return f ? pyc_fiber_is_active(f) : -1;
}

/* A new reference, or NULL with no exception for a main greenlet. */
static PyObject *abi_getparent(PyObject *g)
{
    pyc_fiber *f = checked_impl(g);
    if (!f || !f->parent)
        return NULL;
    return Py_NewRef(pyc_greenlet_adopt(gl_st, (PyObject *)f->parent));
}

/* ------------------------------------------------------------------ */
/* setup                                                                */

int pyc_greenlet_add(PyObject *module, pyc_module_state *st)
{
    if (gl_st) {
        PyErr_SetString(PyExc_ImportError, "pycoro: greenlet's C API is already filled");
        return -1;
    }
    greenlet_slots[GREENLET_DEALLOC_SLOT].pfunc = PyType_GetSlot(st->fiber_type, Py_tp_dealloc);
    st->greenlet_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &greenlet_spec,
                                                                 (PyObject *)st->fiber_type);
    if (!st->greenlet_type || PyModule_AddObjectRef(module, "greenlet",
                                                    (PyObject *)st->greenlet_type) < 0)
        return -1;
    void **api = PyMem_Calloc(GL_API_POINTERS, sizeof *api);
    if (!api) {
        PyErr_NoMemory();
        return -1;
    }
    api[GL_TYPE] = st->greenlet_type;
    api[GL_ERROR] = st->FiberError;
    api[GL_EXIT] = st->FiberExit;
    api[GL_NEW] = (void *)abi_new;
    api[GL_GETCURRENT] = (void *)abi_getcurrent;
    api[GL_THROW] = (void *)abi_throw;
    api[GL_SWITCH] = (void *)abi_switch;
    api[GL_SETPARENT] = (void *)abi_setparent;
    api[GL_MAIN] = (void *)abi_main;
    api[GL_STARTED] = (void *)abi_started;
    api[GL_ACTIVE] = (void *)abi_active;
    api[GL_GETPARENT] = (void *)abi_getparent;
    st->greenlet_api = api;
    if (pyc_capi_publish(module, "_greenlet_C_API", GL_CAPSULE_NAME, api) < 0)
        return -1;
    gl_st = st;
    return 0;
}

void pyc_greenlet_clear(pyc_module_state *st)
{
    if (gl_st == st)
        gl_st = NULL;
    PyMem_Free(st->greenlet_api);
    st->greenlet_api = NULL;
}
