/* fiber.c: the pycoro.Fiber type and the lifetime of fibers and threads
 * (see fiber.h for what it owns; it calls switch, thread, pystate and
 * CPython). */
#include "fiber.h"
#include "chunks.h"

#include "structmember.h"

#if defined(__GLIBC__)
#  include <malloc.h>               /* malloc_trim */
#endif

/* Live main fibers: process-wide, like the threads they stand for. */
static Py_ssize_t main_fibers;

Py_ssize_t pyc_main_fiber_count(void) { return __atomic_load_n(&main_fibers, __ATOMIC_RELAXED); }

/* The module state of a type that derives from Fiber.  Not
 * PyType_GetModuleByDef: from 3.13 it looks only at heap types' MROs
 * (assuming a static type never derives from a heap type), and gevent's
 * Cython classes are static types deriving from our heap greenlet type. */
pyc_module_state *pyc_state_of_type(PyTypeObject *tp)
{
    PyObject *mro = tp->tp_mro;
    Py_ssize_t n = mro ? PyTuple_GET_SIZE(mro) : 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyTypeObject *t = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
        if (!(t->tp_flags & Py_TPFLAGS_HEAPTYPE))
            continue;
        PyObject *m = ((PyHeapTypeObject *)t)->ht_module;
        if (m && PyModule_GetDef(m) == &pyc_module_def)
            return (pyc_module_state *)PyModule_GetState(m);
    }
    PyErr_Format(PyExc_TypeError, "'%s' does not derive from pycoro.Fiber", tp->tp_name);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* allocation                                                           */

/* Giving memory back.  Most of a suspended fiber's memory is malloc'ed
 * (its C stack copy, its root data-stack chunk: a few hundred bytes to a
 * few KiB each), interleaved with whatever else the program allocated
 * meanwhile.  Freeing many fibers leaves glibc's heap full of free holes
 * that stay resident (measured, 100,000 fibers at depth 5 on 3.11: +200
 * MiB, and 122 MiB of it still resident after all were freed; 1,000,000:
 * 1.2 GiB), which only malloc_trim() gives back.  So when the number of
 * fiber records falls to a quarter of its peak since the last trim, after
 * at least TRIM_MIN_FREED were freed, the heap is trimmed.  Once that
 * happened (a mass free is under way) the later quarterings trim too, down
 * to the last few fibers, so that what a mass free leaves is what was
 * there before it.  Freeing N fibers trims about log4(N) times, each after
 * 3/4 of what was left went, on a heap that shrinks as fast: a trim of a
 * half-freed heap of 1,000,000 fibers measured 33 ms, of 100,000 4 ms, of
 * a small heap 0.07 ms; the frees themselves take longer.  A program whose
 * fiber count goes up and down by less than TRIM_MIN_FREED never trims.
 * The counts are process-wide, updated relaxed: on a free-threaded build
 * a race can only move a trim. */
#define TRIM_MIN_FREED 1024
#define TRIM_LAST 16
static Py_ssize_t fiber_records, fiber_records_peak;
static int mass_free;               /* a trim happened since the last peak */

static inline void count_record(void)
{
    Py_ssize_t n = __atomic_add_fetch(&fiber_records, 1, __ATOMIC_RELAXED);
    if (n > __atomic_load_n(&fiber_records_peak, __ATOMIC_RELAXED)) {
        __atomic_store_n(&fiber_records_peak, n, __ATOMIC_RELAXED);
        __atomic_store_n(&mass_free, 0, __ATOMIC_RELAXED);
    }
}

static __attribute__((noinline, cold)) void give_memory_back(Py_ssize_t n)
{
    __atomic_store_n(&fiber_records_peak, n, __ATOMIC_RELAXED);
    __atomic_store_n(&mass_free, 1, __ATOMIC_RELAXED);
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

static inline void uncount_record(void)
{
    Py_ssize_t n = __atomic_sub_fetch(&fiber_records, 1, __ATOMIC_RELAXED);
    Py_ssize_t peak = __atomic_load_n(&fiber_records_peak, __ATOMIC_RELAXED);
    if (__builtin_expect(n <= peak / 4, 0)
        && (peak - n >= TRIM_MIN_FREED
            || (peak - n >= TRIM_LAST && __atomic_load_n(&mass_free, __ATOMIC_RELAXED))))
        give_memory_back(n);
}

static PyFiber *fiber_alloc(PyTypeObject *type)
{
    PyFiber *self = (PyFiber *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    pyc_fiber *f = PyMem_Calloc(1, sizeof *f + pyc_pystate_size());
    if (!f) {
        Py_DECREF(self);                    /* dealloc copes with no impl */
        PyErr_NoMemory();
        return NULL;
    }
    f->self = self;
    self->impl = f;
    count_record();
    return self;
}

/* ------------------------------------------------------------------ */
/* threads                                                              */

static void thread_ended(PyObject *capsule);

static pyc_thread *new_thread(pyc_module_state *st)
{
    PyObject *dict = PyThreadState_GetDict();
    if (!dict) {
        PyErr_SetString(PyExc_RuntimeError, "pycoro: no thread state dict");
        return NULL;
    }
    /* Installed when pycoro is first used in the process (not at import),
     * so that merely importing pycoro changes nothing for other code. */
    pyc_chunk_cache_install();
    PyFiber *main = fiber_alloc(st->fiber_type);
    if (!main)
        return NULL;
    pyc_fiber *mf = main->impl;
    mf->is_main = 1;
    pyc_thread *th = pyc_thread_new(st, &mf->core);
    if (!th) {
        Py_DECREF(main);
        return NULL;
    }
    mf->thread = th;
    pyc_thread_incref(th);
    __atomic_fetch_add(&main_fibers, 1, __ATOMIC_RELAXED);
    th->main = main;
    th->current = (PyFiber *)Py_NewRef(main);   /* main and current: two refs */
    PyObject *capsule = PyCapsule_New(th, "pycoro.thread", thread_ended);
    if (!capsule || PyDict_SetItem(dict, st->thread_key, capsule) < 0) {
        if (capsule) {
            /* Its destructor would end the thread: take it away first. */
            PyCapsule_SetDestructor(capsule, NULL);
            Py_DECREF(capsule);
        }
        pyc_thread_detach(th);
        th->main = th->current = NULL;
        th->core.current = NULL;
        Py_DECREF(main);
        Py_DECREF(main);
        pyc_thread_decref(th);
        return NULL;
    }
    Py_DECREF(capsule);
    return th;
}

pyc_thread *pyc_get_thread(pyc_module_state *st)
{
    pyc_thread *th = pyc_tl_thread;
    if (!th)
        return new_thread(st);
    if (PYC_LOAD(&th->has_pending))
        pyc_kill_pending(th);
    return th;
}

/* ------------------------------------------------------------------ */
/* fibers whose thread ended                                            */

/* A suspended fiber of an ended thread can never run again (its C stack
 * went with the thread): release what its frames hold without running
 * them, and end it.  Its finally blocks do not run (nowhere could they). */
static void discard_orphan(pyc_fiber *f)
{
    PYC_STORE(&f->orphaned, 0);
    pyc_pystate_discard(&f->pystate, !pyc_is_finalizing());
    pc_fiber_release(&f->core);             /* PC_DEAD, its copy freed */
    pyc_thread_unlink(f->thread, &f->link);
    Py_CLEAR(f->call.run);
    Py_CLEAR(f->call.value);
    Py_CLEAR(f->call.kwargs);
    Py_CLEAR(f->parent);                    /* a fiber of the ended thread */
}

static void mark_orphan(pyc_link *node)
{
    pyc_fiber *f = PYC_CONTAINER(node, pyc_fiber, link);
    if (f->core.state == PC_SUSPENDED)
        PYC_STORE(&f->orphaned, 1);
}

/* The thread-state dict is being cleared: this thread is over.  Runs on the
 * ending thread, in PyThreadState_Clear. */
static void thread_ended(PyObject *capsule)
{
    pyc_thread *th = PyCapsule_GetPointer(capsule, "pycoro.thread");
    if (!th) {
        PyErr_Clear();
        return;
    }
    int here = pyc_tl_thread == th && th->current == th->main && !pyc_is_finalizing();
    if (here) {
        /* Last chance to unwind fibers in their own thread: the ones other
         * threads dropped, and the ones nothing references any more (a
         * collection finds those; they are unwound here by finalizers). */
        if (PYC_LOAD(&th->has_pending))
            pyc_kill_pending(th);
        if (th->fibers.next != &th->fibers) {
            PyGC_Collect();
            if (PYC_LOAD(&th->has_pending))
                pyc_kill_pending(th);
        }
    }
    pyc_thread_detach(th);
    th->core.current = NULL;                /* nobody walks its stack chain again */
    PyFiber *cur = th->current, *main = th->main;
    th->current = th->main = NULL;
    pyc_fiber *mf = main->impl;
    if (mf->core.state == PC_SUSPENDED)
        pyc_pystate_discard(&mf->pystate, 0);   /* the thread ended mid-switch */
    mf->core.state = PC_DEAD;
    Py_CLEAR(th->trace);
    /* Whatever is still suspended is orphaned: its frames stay readable
     * (greenlet lets them be inspected too), it can never be resumed, and
     * what it holds is released when it is dropped or collected.  Marked
     * under the registry's lock, which also closes the pending queue: a
     * thread that drops one of these fibers from now on finds it orphaned
     * (fiber_finalize). */
    pyc_pending *late = pyc_thread_close(th, mark_orphan);
    /* Fibers handed over too late: they hold a reference from the queue. */
    for (pyc_pending *p = late; p;) {
        pyc_fiber *f = PYC_CONTAINER(p, pyc_fiber, pending);
        p = p->next;
        Py_DECREF(f->self);                 /* an orphan: released on dealloc */
    }
    Py_XDECREF(cur);
    Py_XDECREF(main);
    pyc_thread_decref(th);
}

/* ------------------------------------------------------------------ */
/* finalization and collection                                          */

/* Finalizer (PEP 442): a suspended fiber that nobody can resume any more is
 * unwound with FiberExit.  Another thread's fiber is handed to that thread,
 * which unwinds it at its next switch, fiber creation or current(), or when
 * it ends; an orphan is released. */
static void fiber_finalize(PyObject *o)
{
    pyc_fiber *f = pyc_impl(o);
    if (!f || f->is_main || f->core.state != PC_SUSPENDED || pyc_is_finalizing())
        return;
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);             /* a finalizer leaves it alone */
    pyc_thread *th = f->thread;
    if (PYC_LOAD(&f->orphaned)) {
        discard_orphan(f);
    } else if (th == pyc_tl_thread && !pyc_tl_in_gc) {
        pyc_kill(th, (PyFiber *)o);
    } else {
        /* Another thread's fiber, or one the collector finalizes: unwound
         * by its thread later (for a collection: as it ends, thread.h).
         * Its thread may have ended since the check above (free-threaded
         * builds): then the fiber is an orphan by now. */
        Py_INCREF(o);                        /* the queue's reference */
        if (pyc_thread_push_pending(th, &f->pending) < 0) {
            Py_DECREF(o);                    /* not resurrected: no recursion */
            if (PYC_LOAD(&f->orphaned))
                discard_orphan(f);
        }
    }
    PyErr_Restore(et, ev, etb);
}

/* The finalizer of subclasses that define __del__: unwind first, then call
 * __del__ (during which switching into the fiber is refused). */
static void fiber_finalize_with_del(PyObject *o)
{
    fiber_finalize(o);
    pyc_fiber *f = pyc_impl(o);
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    PyObject *del = PyObject_GetAttrString((PyObject *)Py_TYPE(o), "__del__");
    if (del) {
        if (f)
            f->finalizing = 1;
        PyObject *r = PyObject_CallOneArg(del, o);
        if (f)
            f->finalizing = 0;
        if (!r)
            PyErr_WriteUnraisable(del);
        Py_XDECREF(r);
        Py_DECREF(del);
    } else {
        PyErr_Clear();
    }
    PyErr_Restore(et, ev, etb);
}

static void fiber_dealloc(PyFiber *self);

/* Does this dealloc (and traverse) own the instance's reference to its
 * type?  CPython's subtype_dealloc (a Python-level class) leaves it to the
 * nearest base with a dealloc of its own when that base is a heap type,
 * and drops it itself when that base is static.  So: yes, unless a static
 * type -- a C or Cython subclass, like gevent's Greenlet under gevent's
 * Python Hub -- stands between the instance's type and the first type
 * whose dealloc is ours (that subclass's caller drops it). */
static int owns_type_ref(PyTypeObject *tp)
{
    for (PyTypeObject *b = tp; b; b = b->tp_base) {
        if (!(b->tp_flags & Py_TPFLAGS_HEAPTYPE))
            return 0;
        if (b->tp_dealloc == (destructor)fiber_dealloc)
            return 1;
    }
    return 0;
}

static int fiber_traverse(PyFiber *self, visitproc visit, void *arg)
{
    if (owns_type_ref(Py_TYPE(self)))
        Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->dict);
    pyc_fiber *f = self->impl;
    if (!f)
        return 0;
    Py_VISIT(f->parent);
    Py_VISIT(f->run);
    Py_VISIT(f->context);
    Py_VISIT(f->call.run);
    Py_VISIT(f->call.value);
    Py_VISIT(f->call.kwargs);
    /* A suspended fiber alone owns its frames, so cycles through them are
     * collected, whichever thread collects: its finalizer unwinds it there
     * if that is its own thread, else hands it to its thread (unwound at
     * that thread's next switch, collection's end, or exit), and an orphan
     * is released.  (Visiting only in the owner's collections leaked: a
     * thread running gc.collect() in a loop promoted every other thread's
     * cycles to the oldest generation and reset the counters that would
     * have started the owner's own full collection.)  A main fiber's frames
     * are its thread's bottom, kept alive by the thread itself. */
    if (f->core.state == PC_SUSPENDED && !f->is_main)
        return pyc_pystate_traverse(&f->pystate, visit, arg);
    return 0;
}

static int fiber_clear(PyFiber *self)
{
    Py_CLEAR(self->dict);
    pyc_fiber *f = self->impl;
    if (!f)
        return 0;
    Py_CLEAR(f->run);
    Py_CLEAR(f->context);
    if (!pyc_fiber_is_active(f))
        Py_CLEAR(f->parent);
    return 0;
}

/* Can a dropped suspended fiber be unwound (or released) from here? */
static int can_unwind(pyc_fiber *f)
{
    return f->core.state == PC_SUSPENDED && !f->is_main
           && (PYC_LOAD(&f->thread->alive) || PYC_LOAD(&f->orphaned)) && !pyc_is_finalizing();
}

/* Dropping the last of a long chain of fibers (each holds its parent)
 * recurses once per fiber.  The trashcan bounds that only at CPython's C
 * recursion limit (3.13: about 10,000 levels, 64 bytes of C stack each
 * here, more than a 256 KiB stack), so deeper than DEFER_DEPTH nested
 * deallocations a parent is put in this thread's list instead, and the
 * outermost deallocation drops the list's fibers one after another. */
#define DEFER_DEPTH 100
static __attribute__((tls_model("initial-exec"))) _Thread_local int dealloc_depth;
static __attribute__((tls_model("initial-exec"))) _Thread_local int draining;
static __attribute__((tls_model("initial-exec"))) _Thread_local PyObject **deferred;
static __attribute__((tls_model("initial-exec"))) _Thread_local Py_ssize_t n_deferred;
static __attribute__((tls_model("initial-exec"))) _Thread_local Py_ssize_t cap_deferred;

static void drop_parent(PyFiber *p)
{
    if (!p)
        return;
    if (dealloc_depth > DEFER_DEPTH) {
        if (n_deferred == cap_deferred) {
            Py_ssize_t cap = cap_deferred ? 2 * cap_deferred : 64;
            PyObject **a = PyMem_RawRealloc(deferred, (size_t)cap * sizeof *a);
            if (!a) {
                Py_DECREF(p);               /* no memory: recurse (the trashcan bounds it) */
                return;
            }
            deferred = a;
            cap_deferred = cap;
        }
        deferred[n_deferred++] = (PyObject *)p;
        return;
    }
    Py_DECREF(p);
}

/* In the outermost deallocation: drop the deferred parents (each may defer
 * more; this loop, not a recursion, takes them). */
static void drain_deferred(void)
{
    if (dealloc_depth > 0 || draining || n_deferred == 0)
        return;
    draining = 1;
    while (n_deferred > 0) {
        PyObject *o = deferred[--n_deferred];
        Py_DECREF(o);
    }
    PyMem_RawFree(deferred);
    deferred = NULL;
    cap_deferred = 0;
    draining = 0;
}

static void release_impl(pyc_fiber *f)
{
    pyc_thread *th = f->thread;
    if (f->is_main) {
        pc_thread_fini(&th->core);
        __atomic_fetch_sub(&main_fibers, 1, __ATOMIC_RELAXED);
    } else if (th) {
        if (f->core.state == PC_SUSPENDED)   /* could not be unwound */
            pyc_pystate_discard(&f->pystate, f->orphaned && !pyc_is_finalizing());
        pc_fiber_release(&f->core);
        pyc_thread_unlink(th, &f->link);
    }
    Py_CLEAR(f->run);
    Py_CLEAR(f->context);
    PyFiber *parent = f->parent;
    f->parent = NULL;
    /* Only a fiber abandoned mid-run still holds these. */
    Py_CLEAR(f->call.run);
    Py_CLEAR(f->call.value);
    Py_CLEAR(f->call.kwargs);
    if (th)
        pyc_thread_decref(th);
    PyMem_Free(f);
    uncount_record();
    drop_parent(parent);                    /* last: see drop_parent */
}

static void fiber_dealloc(PyFiber *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    int drop_type = owns_type_ref(tp);      /* read before the type may go */
    pyc_fiber *f = self->impl;
    if (f) {
        if (PyObject_CallFinalizerFromDealloc((PyObject *)self) < 0)
            return;                         /* resurrected */
        if (can_unwind(f)) {
            /* Still suspended: its finalizer ran before (PEP 442 runs it
             * once) and the fiber survived that FiberExit, was resurrected
             * and is now dropped again.  Unwind it again, resurrected for
             * the duration. */
            Py_SET_REFCNT(self, 1);
            fiber_finalize((PyObject *)self);
            Py_SET_REFCNT(self, Py_REFCNT(self) - 1);
            if (Py_REFCNT(self) > 0)
                return;                     /* resurrected again */
        }
    }
    PyObject_GC_UnTrack(self);
    /* A fiber holds its parent: dropping the last of a long chain of
     * finished fibers would otherwise recurse once per fiber until the C
     * stack overflows.  The trashcan defers deep deallocations. */
    Py_TRASHCAN_BEGIN(self, fiber_dealloc)
    if (self->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)self);
    self->impl = NULL;
    dealloc_depth++;
    if (f)
        release_impl(f);
    Py_CLEAR(self->dict);
    tp->tp_free(self);
    if (drop_type)
        Py_DECREF(tp);                      /* as PyType_GenericAlloc took it */
    dealloc_depth--;
    drain_deferred();
    Py_TRASHCAN_END
}

/* ------------------------------------------------------------------ */
/* construction                                                         */

static int set_run(pyc_fiber *f, PyObject *run)
{
    if (f->core.state != PC_NEW) {
        PyErr_SetString(PyExc_AttributeError, "run cannot be set after the fiber has started");
        return -1;
    }
    Py_XSETREF(f->run, Py_XNewRef(run));
    return 0;
}

/* Free-threaded builds: another live thread may switch to or resume this
 * started fiber at any moment, so its saved state (frames, context) and
 * its links cannot be read or changed from here without a lock on every
 * switch, which pycoro does not take.  With the GIL nothing switches
 * meanwhile.  Orphans and finished fibers never change again; an unstarted
 * fiber belongs to whichever thread starts it (gevent's threadpool gives a
 * greenlet made by the hub to a worker thread), its fields change only in
 * the object's critical section or as it starts. */
static int owned_elsewhere(pyc_fiber *f)
{
    if (!PYC_FREE_THREADED || !f->thread || pyc_fiber_is_dead(f) || PYC_LOAD(&f->orphaned))
        return 0;
    return f->thread != pyc_tl_thread && PYC_LOAD(&f->thread->alive);
}

static int set_parent(pyc_module_state *st, PyFiber *self, PyObject *value)
{
    pyc_fiber *f = self->impl;
    if (!value) {
        PyErr_SetString(PyExc_AttributeError, "can't delete the parent attribute");
        return -1;
    }
    if (!PyObject_TypeCheck(value, st->fiber_type)) {
        PyErr_Format(PyExc_TypeError, "parent must be a Fiber, not %.200s", Py_TYPE(value)->tp_name);
        return -1;
    }
    PyFiber *p = (PyFiber *)value;
    if (f->is_main) {
        /* AttributeError, as greenlet: main's parent is read-only. */
        PyErr_SetString(PyExc_AttributeError, "cannot set the parent of a main fiber");
        return -1;
    }
    pyc_thread *theirs = NULL;
    for (PyFiber *q = p; q; q = q->impl->parent) {
        if (q == self) {
            PyErr_SetString(PyExc_ValueError, "cyclic parent chain");
            return -1;
        }
        if (!theirs)
            theirs = q->impl->thread;
    }
    /* A started fiber stays in its thread; one that never started belongs
     * to the thread of its parents, so a parent anywhere may be given. */
    if (f->thread && theirs != f->thread) {
        PyErr_SetString(PyExc_ValueError, "parent cannot be on a different thread");
        return -1;
    }
    if (owned_elsewhere(f)) {
        PyErr_SetString(PyExc_ValueError, "cannot set the parent of a fiber of another running "
                                          "thread (free-threaded build: it may switch meanwhile)");
        return -1;
    }
    PyFiber *old;
    PYC_LOCKED((PyObject *)self);
    old = f->parent;
    f->parent = (PyFiber *)Py_NewRef(p);
    PYC_UNLOCKED();
    Py_XDECREF(old);
    return 0;
}

static PyObject *fiber_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)args;
    (void)kwds;
    pyc_module_state *st = pyc_state_of_type(type);
    if (!st)
        return NULL;
    pyc_thread *th = pyc_get_thread(st);
    if (!th)
        return NULL;
    PyFiber *self = fiber_alloc(type);
    if (!self)
        return NULL;
    self->impl->parent = (PyFiber *)Py_NewRef(th->current);
    return (PyObject *)self;
}

static int fiber_init(PyFiber *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"run", "parent", NULL};
    PyObject *run = Py_None, *parent = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OO:Fiber", kwlist, &run, &parent))
        return -1;
    if (run != Py_None && set_run(self->impl, run) < 0)
        return -1;
    if (parent != Py_None) {
        pyc_module_state *st = pyc_state_of_type(Py_TYPE(self));
        if (!st || set_parent(st, self, parent) < 0)
            return -1;
    }
    return 0;
}

PyObject *pyc_fiber_new(PyTypeObject *type, PyObject *run, PyObject *parent)
{
    return PyObject_CallFunctionObjArgs((PyObject *)type, run ? run : Py_None,
                                        parent ? parent : Py_None, NULL);
}

/* ------------------------------------------------------------------ */
/* switch() and throw()                                                 */

/* The switching thread, checked against the target: NULL with an error. */
static pyc_thread *switching_thread(PyFiber *self, const char *finalizing_msg)
{
    pyc_thread *th = pyc_tl_thread;
    if (!th) {
        pyc_module_state *st = pyc_state_of_type(Py_TYPE(self));
        if (!st || !(th = pyc_get_thread(st)))
            return NULL;
    } else if (PYC_LOAD(&th->has_pending)) {
        pyc_kill_pending(th);
    }
    if (pyc_check_switchable(th, self->impl, finalizing_msg) < 0)
        return NULL;
    return th;
}

static const char SWITCH_IN_DEL[] = "cannot switch into a fiber from its own finalizer";
static const char THROW_IN_DEL[] = "cannot throw into a fiber from its own finalizer";

/* switch() with keywords or several arguments, or anything unusual. */
static __attribute__((noinline)) PyObject *fiber_switch_general(PyFiber *self,
                                                                PyObject *const *args,
                                                                Py_ssize_t nargs,
                                                                PyObject *kwnames)
{
    pyc_thread *th = switching_thread(self, SWITCH_IN_DEL);
    if (!th || pyc_park_args(th, args, nargs, kwnames) < 0)
        return NULL;
    th->stack_top = args + nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0);
    return pyc_switch(th, self);
}

/* switch(): the common call (a started fiber of this thread, no keywords,
 * at most one argument) parks the payload and jumps to pyc_switch() as a
 * tail call, so this frame is not among the bytes every switch copies. */
static PyObject *fiber_switch(PyFiber *self, PyObject *const *args, Py_ssize_t nargsf,
                              PyObject *kwnames)
{
    pyc_fiber *f = self->impl;
    pyc_thread *th = f->thread;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (__builtin_expect(!th || th != pyc_tl_thread || f->finalizing || PYC_LOAD(&th->has_pending)
                         || kwnames || nargs > 1, 0))
        return fiber_switch_general(self, args, nargs, kwnames);
    pyc_park_simple(th, args, nargs);
    th->stack_top = args + nargs;
    return pyc_switch(th, self);
}

static PyObject *fiber_throw(PyFiber *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs > 3) {
        PyErr_Format(PyExc_TypeError, "throw expected at most 3 arguments, got %zd", nargs);
        return NULL;
    }
    pyc_thread *th = switching_thread(self, THROW_IN_DEL);
    if (!th || pyc_park_throw(th, nargs > 0 ? args[0] : NULL, nargs > 1 ? args[1] : NULL,
                              nargs > 2 ? args[2] : NULL) < 0)
        return NULL;
    th->stack_top = args + nargs;
    return pyc_switch(th, self);
}

PyObject *pyc_fiber_switch(PyObject *fiber, PyObject *args, PyObject *kwargs)
{
    PyFiber *self = (PyFiber *)fiber;
    pyc_thread *th = switching_thread(self, SWITCH_IN_DEL);
    if (!th)
        return NULL;
    Py_ssize_t nargs = args ? PyTuple_GET_SIZE(args) : 0;
    if (!kwargs || PyDict_GET_SIZE(kwargs) == 0) {
        if (pyc_park_args(th, args ? &PyTuple_GET_ITEM(args, 0) : NULL, nargs, NULL) < 0)
            return NULL;
    } else {
        /* Copies, so that the caller may change its tuple and dict while
         * the fiber runs. */
        PyObject *tuple = args ? PyTuple_GetSlice(args, 0, nargs) : PyTuple_New(0);
        PyObject *kw = tuple ? PyDict_Copy(kwargs) : NULL;
        if (!kw) {
            Py_XDECREF(tuple);
            return NULL;
        }
        th->pass = PASS_ARGS;
        th->pass_value = tuple;
        th->pass_kwargs = kw;
    }
    return pyc_switch(th, self);
}

PyObject *pyc_fiber_throw(PyObject *fiber, PyObject *typ, PyObject *val, PyObject *tb)
{
    pyc_thread *th = switching_thread((PyFiber *)fiber, THROW_IN_DEL);
    if (!th || pyc_park_throw(th, typ, val, tb) < 0)
        return NULL;
    return pyc_switch(th, (PyFiber *)fiber);
}

int pyc_fiber_set_run(PyObject *fiber, PyObject *run)
{
    return set_run(pyc_impl(fiber), run);
}

int pyc_fiber_set_parent(PyObject *fiber, PyObject *parent)
{
    pyc_module_state *st = pyc_state_of_type(Py_TYPE(fiber));
    return st ? set_parent(st, (PyFiber *)fiber, parent) : -1;
}

static PyObject *fiber_init_subclass(PyObject *cls, PyObject *args, PyObject *kwds)
{
    if ((args && PyTuple_GET_SIZE(args)) || (kwds && PyDict_GET_SIZE(kwds))) {
        PyErr_SetString(PyExc_TypeError, "Fiber.__init_subclass__() takes no arguments");
        return NULL;
    }
    /* CPython gives a subclass that defines __del__ a tp_finalize of its
     * own (which would only call __del__); install ours, which unwinds the
     * fiber first.  Other subclasses inherit fiber_finalize. */
    PyTypeObject *tp = (PyTypeObject *)cls;
    if (tp->tp_finalize != fiber_finalize)
        tp->tp_finalize = fiber_finalize_with_del;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ */
/* attributes                                                           */

static PyObject *fiber_repr(PyFiber *self)
{
    const char *state;
    switch (self->impl->core.state) {
    case PC_NEW: state = "new"; break;
    case PC_RUNNING: state = "running"; break;
    case PC_SUSPENDED: state = "suspended"; break;
    default: state = "dead"; break;
    }
    return PyUnicode_FromFormat("<%s object at %p (%s%s)>", Py_TYPE(self)->tp_name, self,
                                self->impl->is_main ? "main, " : "", state);
}

static int fiber_bool(PyFiber *self) { return pyc_fiber_is_active(self->impl); }

static PyObject *get_run(PyFiber *self, void *c)
{
    (void)c;
    if (self->impl->run)
        return Py_NewRef(self->impl->run);
    PyErr_SetString(PyExc_AttributeError, "run");
    return NULL;
}

static int set_run_attr(PyFiber *self, PyObject *v, void *c)
{
    (void)c;
    return set_run(self->impl, v);
}

PyFiber *pyc_fiber_get_parent(PyObject *fiber)
{
    /* Any thread may read it while its owner sets it (which drops the old
     * parent): the object's critical section on free-threaded builds. */
    PyFiber *p;
    PYC_LOCKED(fiber);
    p = (PyFiber *)Py_XNewRef((PyObject *)pyc_impl(fiber)->parent);
    PYC_UNLOCKED();
    return p;
}

static PyObject *get_parent(PyFiber *self, void *c)
{
    (void)c;
    PyFiber *p = pyc_fiber_get_parent((PyObject *)self);
    return p ? (PyObject *)p : Py_NewRef(Py_None);
}

static int set_parent_attr(PyFiber *self, PyObject *v, void *c)
{
    (void)c;
    return pyc_fiber_set_parent((PyObject *)self, v);
}

static PyObject *get_dead(PyFiber *self, void *c)
{
    (void)c;
    return PyBool_FromLong(pyc_fiber_is_dead(self->impl));
}

static PyObject *get_started(PyFiber *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->impl->core.state != PC_NEW);
}

static PyObject *get_frame(PyFiber *self, void *c)
{
    (void)c;
    /* A suspended fiber's frames live in its data stack, on the heap (an
     * orphan's too, until they are released). */
    pyc_fiber *f = self->impl;
    if (f->core.state == PC_SUSPENDED && !pyc_is_finalizing() && !owned_elsewhere(f)) {
        PyObject *frame = pyc_pystate_frame(&f->pystate);
        if (frame)
            return frame;
    }
    Py_RETURN_NONE;
}

/* The context of a running fiber lives in its thread's state. */
static int running_elsewhere(pyc_fiber *f, const char *what)
{
    if (f->core.state == PC_RUNNING && f->thread != pyc_tl_thread) {
        PyErr_Format(PyExc_ValueError, "cannot %s the context of a fiber running in another thread",
                     what);
        return 1;
    }
    return 0;
}

static int suspended_elsewhere(pyc_fiber *f, const char *what)
{
    if (f->core.state != PC_RUNNING && owned_elsewhere(f)) {
        PyErr_Format(PyExc_ValueError, "cannot %s the context of a fiber of another running "
                                       "thread (free-threaded build: it may switch meanwhile)",
                     what);
        return 1;
    }
    return 0;
}

static PyObject *get_context(PyFiber *self, void *c)
{
    (void)c;
    pyc_fiber *f = self->impl;
    PyObject *ctx;
    if (running_elsewhere(f, "read") || suspended_elsewhere(f, "read"))
        return NULL;
    switch (f->core.state) {
    case PC_RUNNING:
        ctx = pyc_ts_context(f->thread->ts);
        break;
    case PC_SUSPENDED:
        ctx = pyc_pystate_context(&f->pystate);
        break;
    default:                                 /* new, or finished */
        ctx = f->context;
        break;
    }
    return Py_NewRef(ctx ? ctx : Py_None);
}

static int set_context(PyFiber *self, PyObject *v, void *c)
{
    (void)c;
    pyc_fiber *f = self->impl;
    if (v == Py_None)
        v = NULL;
    if (v && !PyContext_CheckExact(v)) {
        PyErr_Format(PyExc_TypeError, "context must be a contextvars.Context or None, not %.200s",
                     Py_TYPE(v)->tp_name);
        return -1;
    }
    if (running_elsewhere(f, "set") || suspended_elsewhere(f, "set"))
        return -1;
    Py_XINCREF(v);
    switch (f->core.state) {
    case PC_RUNNING:
        pyc_ts_set_context(f->thread->ts, v);
        break;
    case PC_SUSPENDED:
        pyc_pystate_set_context(&f->pystate, v);
        break;
    default:                                 /* new, or finished */
        Py_XSETREF(f->context, v);
        break;
    }
    return 0;
}

static PyObject *get_stack_saved(PyFiber *self, void *c)
{
    (void)c;
    return PyLong_FromSize_t(pc_saved_bytes(&self->impl->core));
}

static PyObject *get_is_main(PyFiber *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->impl->is_main);
}

static PyGetSetDef fiber_getset[] = {
    {"run", (getter)get_run, (setter)set_run_attr, "The callable run at the first switch.", NULL},
    {"parent", (getter)get_parent, (setter)set_parent_attr,
     "The fiber that receives run()'s result or exception.", NULL},
    {"dead", (getter)get_dead, NULL, "True once run() has finished.", NULL},
    {"started", (getter)get_started, NULL, "True once the fiber has been switched to.", NULL},
    {"frame", (getter)get_frame, NULL, "Top Python frame while suspended, else None.", NULL},
    {"context", (getter)get_context, (setter)set_context, "The fiber's contextvars.Context.", NULL},
    {"stack_saved", (getter)get_stack_saved, NULL, "Bytes of C stack held on the heap.", NULL},
    {"is_main", (getter)get_is_main, NULL, "True for a thread's main fiber.", NULL},
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {0},
};

static PyMemberDef fiber_members[] = {
    {"__dictoffset__", T_PYSSIZET, offsetof(PyFiber, dict), READONLY, NULL},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(PyFiber, weakreflist), READONLY, NULL},
    {0},
};

static PyMethodDef fiber_methods[] = {
    {"switch", (PyCFunction)(void (*)(void))fiber_switch, METH_FASTCALL | METH_KEYWORDS,
     "switch(*args, **kwargs)\n--\n\nStart or resume the fiber, passing values."},
    {"throw", (PyCFunction)(void (*)(void))fiber_throw, METH_FASTCALL,
     "throw(typ=FiberExit, val=None, tb=None)\n--\n\nRaise an exception in the fiber."},
    {"__init_subclass__", (PyCFunction)(void (*)(void))fiber_init_subclass,
     METH_VARARGS | METH_KEYWORDS | METH_CLASS, NULL},
    {0},
};

static PyType_Slot fiber_slots[] = {
    {Py_tp_doc, "Fiber(run=None, parent=None)\n--\n\n"
                "A stackful coroutine on the thread's own C stack."},
    {Py_tp_new, fiber_new},
    {Py_tp_init, fiber_init},
    {Py_tp_dealloc, fiber_dealloc},
    {Py_tp_finalize, fiber_finalize},
    {Py_tp_traverse, fiber_traverse},
    {Py_tp_clear, fiber_clear},
    {Py_tp_repr, fiber_repr},
    {Py_nb_bool, fiber_bool},
    {Py_tp_getset, fiber_getset},
    {Py_tp_members, fiber_members},
    {Py_tp_methods, fiber_methods},
    {0, NULL},
};

PyType_Spec pyc_fiber_spec = {
    .name = "pycoro.Fiber",
    .basicsize = sizeof(PyFiber),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = fiber_slots,
};
