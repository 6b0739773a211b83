/* greenlet 3's C API, served by pycoro.
 *
 *     #include <greenlet/greenlet.h>      (include dir: pycoro.get_include())
 *
 * An extension written against greenlet's own greenlet.h (gevent, or any
 * C/Cython greenlet user) builds against this header unchanged and runs
 * on pycoro.compat: the object layout, the table's slot numbers and every
 * entry's signature are greenlet 3's.  The table is the capsule
 * "greenlet._C_API" (pycoro.compat.install() makes `import greenlet` find
 * it); PyGreenlet_Import() fills _PyGreenlet_API from it.
 *
 * Behaviour of the entries is greenlet's, with one difference: the
 * predicates (PyGreenlet_MAIN/STARTED/ACTIVE) given a non-greenlet return
 * -1 with TypeError instead of reading past the object.
 */
#ifndef PYCORO_GREENLET_H
#define PYCORO_GREENLET_H
/* Code that checks for greenlet's own include guard finds it too. */
#ifndef Py_GREENLETOBJECT_H
#define Py_GREENLETOBJECT_H

#include <Python.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Kept for old code; greenlet froze it at this value. */
#define GREENLET_VERSION "1.0.0"

#ifndef GREENLET_MODULE
#define implementation_ptr_t void *
#endif

/* An instance: 40 bytes on 64-bit.  Subclasses put their fields after. */
typedef struct _greenlet {
    PyObject_HEAD
    PyObject *weakreflist;
    PyObject *dict;
    implementation_ptr_t pimpl;     /* opaque: pycoro's fiber state */
} PyGreenlet;

#define PyGreenlet_Check(op) ((op) && PyObject_TypeCheck((op), &PyGreenlet_Type))

/* Slots of the table (their order is the ABI). */
#define PyGreenlet_API_pointers 12
#define PyGreenlet_Type_NUM 0
#define PyExc_GreenletError_NUM 1
#define PyExc_GreenletExit_NUM 2
#define PyGreenlet_New_NUM 3
#define PyGreenlet_GetCurrent_NUM 4
#define PyGreenlet_Throw_NUM 5
#define PyGreenlet_Switch_NUM 6
#define PyGreenlet_SetParent_NUM 7
#define PyGreenlet_MAIN_NUM 8
#define PyGreenlet_STARTED_NUM 9
#define PyGreenlet_ACTIVE_NUM 10
#define PyGreenlet_GET_PARENT_NUM 11

#ifndef GREENLET_MODULE

/* One table pointer per compilation unit, as with greenlet's header. */
static void **_PyGreenlet_API = NULL;

/* greenlet.greenlet, greenlet.error, greenlet.GreenletExit (borrowed). */
#define PyGreenlet_Type (*(PyTypeObject *)_PyGreenlet_API[PyGreenlet_Type_NUM])
#define PyExc_GreenletError ((PyObject *)_PyGreenlet_API[PyExc_GreenletError_NUM])
#define PyExc_GreenletExit ((PyObject *)_PyGreenlet_API[PyExc_GreenletExit_NUM])

/* greenlet.greenlet(run, parent); either may be NULL.  New reference. */
#define PyGreenlet_New \
    (*(PyGreenlet * (*)(PyObject *run, PyGreenlet *parent)) _PyGreenlet_API[PyGreenlet_New_NUM])

/* greenlet.getcurrent().  New reference. */
#define PyGreenlet_GetCurrent \
    (*(PyGreenlet * (*)(void)) _PyGreenlet_API[PyGreenlet_GetCurrent_NUM])

/* g.throw(typ, val, tb); val and tb may be NULL. */
#define PyGreenlet_Throw                                                             \
    (*(PyObject * (*)(PyGreenlet *self, PyObject *typ, PyObject *val, PyObject *tb)) \
         _PyGreenlet_API[PyGreenlet_Throw_NUM])

/* g.switch(*args, **kwargs); args NULL means (), kwargs may be NULL. */
#define PyGreenlet_Switch                                                          \
    (*(PyObject * (*)(PyGreenlet *greenlet, PyObject *args, PyObject *kwargs)) \
         _PyGreenlet_API[PyGreenlet_Switch_NUM])

/* g.parent = nparent: 0, or -1 with an exception. */
#define PyGreenlet_SetParent \
    (*(int (*)(PyGreenlet *greenlet, PyGreenlet *nparent)) _PyGreenlet_API[PyGreenlet_SetParent_NUM])

/* g.parent as a new reference; NULL, with no exception set, for a main
 * greenlet. */
#define PyGreenlet_GetParent \
    (*(PyGreenlet * (*)(PyGreenlet *)) _PyGreenlet_API[PyGreenlet_GET_PARENT_NUM])
#define PyGreenlet_GET_PARENT PyGreenlet_GetParent

/* 1 or 0: a thread's main greenlet / has been switched to / running or
 * suspended. */
#define PyGreenlet_MAIN (*(int (*)(PyGreenlet *)) _PyGreenlet_API[PyGreenlet_MAIN_NUM])
#define PyGreenlet_STARTED (*(int (*)(PyGreenlet *)) _PyGreenlet_API[PyGreenlet_STARTED_NUM])
#define PyGreenlet_ACTIVE (*(int (*)(PyGreenlet *)) _PyGreenlet_API[PyGreenlet_ACTIVE_NUM])

/* Fill _PyGreenlet_API (NULL with an exception set on failure). */
#define PyGreenlet_Import() \
    { _PyGreenlet_API = (void **)PyCapsule_Import("greenlet._C_API", 0); }

#endif /* GREENLET_MODULE */

#ifdef __cplusplus
}
#endif
#endif /* Py_GREENLETOBJECT_H */
#endif /* PYCORO_GREENLET_H */
