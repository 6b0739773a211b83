/* switch.c: how control moves between fibers (see switch.h for what it
 * owns; it calls thread, pystate, the core and CPython). */
#include "switch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* the payload                                                          */

static void drop_payload(pyc_thread *th)
{
    Py_CLEAR(th->pass_value);
    Py_CLEAR(th->pass_kwargs);
}

/* What switch() returns to the fiber that resumes: greenlet's packing
 * (nothing -> (), one value -> it, keywords only -> the dict, both ->
 * (args, kwargs)). */
static PyObject *take_payload(pyc_thread *th)
{
    PyObject *v = th->pass_value, *kw = th->pass_kwargs;
    th->pass_value = NULL;
    if (th->pass == PASS_VALUE)
        return v;
    if (th->pass == PASS_ERROR)
        return NULL;
    th->pass_kwargs = NULL;
    if (kw && PyDict_GET_SIZE(kw) == 0)
        Py_CLEAR(kw);
    Py_ssize_t n = PyTuple_GET_SIZE(v);
    if (!kw) {
        if (n == 1) {
            PyObject *only = Py_NewRef(PyTuple_GET_ITEM(v, 0));
            Py_DECREF(v);
            return only;
        }
        return v;                          /* () when nothing was passed */
    }
    if (n == 0) {
        Py_DECREF(v);
        return kw;
    }
    PyObject *both = PyTuple_Pack(2, v, kw);
    Py_DECREF(v);
    Py_DECREF(kw);
    return both;
}

int pyc_park_args(pyc_thread *th, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (!kwnames && nargs <= 1) {
        pyc_park_simple(th, args, nargs);
        return 0;
    }
    PyObject *tuple = PyTuple_New(nargs);
    if (!tuple)
        return -1;
    for (Py_ssize_t i = 0; i < nargs; i++)
        PyTuple_SET_ITEM(tuple, i, Py_NewRef(args[i]));
    PyObject *kw = NULL;
    if (kwnames && PyTuple_GET_SIZE(kwnames)) {
        kw = PyDict_New();
        for (Py_ssize_t i = 0; kw && i < PyTuple_GET_SIZE(kwnames); i++) {
            if (PyDict_SetItem(kw, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0)
                Py_CLEAR(kw);
        }
        if (!kw) {
            Py_DECREF(tuple);
            return -1;
        }
    }
    th->pass = PASS_ARGS;
    th->pass_value = tuple;
    th->pass_kwargs = kw;
    return 0;
}

int pyc_park_throw(pyc_thread *th, PyObject *typ, PyObject *val, PyObject *tb)
{
    if (!typ)
        typ = th->mstate->FiberExit;
    if (val == Py_None)
        val = NULL;
    if (tb == Py_None)
        tb = NULL;
    else if (tb && !PyTraceBack_Check(tb)) {
        PyErr_SetString(PyExc_TypeError, "throw() third argument must be a traceback object");
        return -1;
    }
    if (PyExceptionClass_Check(typ)) {
        Py_INCREF(typ);
        Py_XINCREF(val);
        Py_XINCREF(tb);
        PyErr_NormalizeException(&typ, &val, &tb);
        if (tb && PyException_SetTraceback(val, tb) < 0) {
            Py_DECREF(typ);
            Py_XDECREF(val);
            Py_XDECREF(tb);
            return -1;
        }
        PyErr_Restore(typ, val, tb);
    } else if (PyExceptionInstance_Check(typ)) {
        if (val) {
            PyErr_SetString(PyExc_TypeError, "instance exception may not have a separate value");
            return -1;
        }
        val = typ;
        typ = PyExceptionInstance_Class(typ);
        if (!tb)
            tb = PyException_GetTraceback(val);     /* new reference or NULL */
        else
            Py_INCREF(tb);
        Py_INCREF(typ);
        Py_INCREF(val);
        PyErr_Restore(typ, val, tb);
    } else {
        PyErr_Format(PyExc_TypeError, "exceptions must be classes, or instances, not %.200s",
                     Py_TYPE(typ)->tp_name);
        return -1;
    }
    th->pass = PASS_ERROR;
    th->pass_value = th->pass_kwargs = NULL;
    return 0;
}

/* ------------------------------------------------------------------ */
/* tracing                                                              */

/* Call the settrace() function with sys.settrace tracing disabled (as
 * greenlet does); a failing tracer is removed and its exception replaces
 * the payload.
 *
 * Re-entry, greenlet's rule: every switch is traced, those the tracer
 * itself makes (or code it calls) included, so the tracer may run inside
 * itself.  That nesting is bounded like any recursion: each level is a
 * Python call, and a fiber started inside the tracer inherits its
 * starter's recursion depth (pystate.c), so a tracer that starts a fiber on
 * every switch ends in RecursionError -- raised in the innermost fiber, it
 * removes the tracer and propagates through every level's switch() back to
 * the switch that began it. */
static int call_trace(pyc_thread *th, PyObject *event, PyFiber *origin, PyFiber *target)
{
    PyObject *tracer = Py_NewRef(th->trace);
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    PyThreadState_EnterTracing(th->ts);
    PyObject *r = PyObject_CallFunction(tracer, "O(OO)", event,
                                        origin ? (PyObject *)origin : Py_None,
                                        (PyObject *)target);
    PyThreadState_LeaveTracing(th->ts);
    Py_DECREF(tracer);
    if (!r) {
        Py_CLEAR(th->trace);
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(etb);
        return -1;
    }
    Py_DECREF(r);
    PyErr_Restore(et, ev, etb);
    return 0;
}

/* Step 3 of a switch, in the fiber that now runs. */
static PyObject *arrive(pyc_thread *th, PyFiber *self)
{
    PyFiber *from = th->origin;             /* the reference th->current had */
    th->origin = NULL;
    PyObject *result = take_payload(th);
    if (th->trace) {
        PyObject *event = result ? th->mstate->str_switch : th->mstate->str_throw;
        if (call_trace(th, event, from, self) < 0)
            Py_CLEAR(result);
    }
    Py_XDECREF(from);
    return result;
}

/* ------------------------------------------------------------------ */
/* which fiber, which thread                                            */

/* An exception thrown at a new fiber ends it unstarted; like any finished
 * fiber it keeps its context (greenlet keeps gr_context too). */
static void kill_unstarted(pyc_fiber *f)
{
    f->core.state = PC_DEAD;
    Py_CLEAR(f->run);
}

/* Where a switch to `target` lands: a dead fiber passes to its nearest live
 * ancestor; an exception thrown at a new fiber kills it unstarted and goes
 * on to its parent (greenlet's rules). */
static PyFiber *resolve_target(PyFiber *target, int error)
{
    while (target) {
        pyc_fiber *f = target->impl;
        pc_state s = f->core.state;
        if (s == PC_RUNNING || s == PC_SUSPENDED)
            return target;
        if (s == PC_NEW) {
            if (!error)
                return target;
            kill_unstarted(f);
        }
        target = f->parent;
    }
    return NULL;
}

/* The thread a fiber belongs to: its own once started (or a main fiber's),
 * else its nearest started ancestor's. */
static pyc_thread *lineage_thread(pyc_fiber *f)
{
    for (; f; f = f->parent ? f->parent->impl : NULL) {
        if (f->thread)
            return f->thread;
    }
    return NULL;
}

/* "thread 140213 (Thread-3)": the name from threading, if it has one. */
static PyObject *describe_thread(unsigned long ident)
{
    PyObject *name = NULL;
    PyObject *mod = PyImport_ImportModule("threading");
    if (mod) {
        PyObject *active = PyObject_GetAttrString(mod, "_active");
        PyObject *key = PyLong_FromUnsignedLong(ident);
        PyObject *t = active && key ? PyObject_GetItem(active, key) : NULL;
        name = t ? PyObject_GetAttrString(t, "name") : NULL;
        Py_XDECREF(t);
        Py_XDECREF(key);
        Py_XDECREF(active);
        Py_DECREF(mod);
    }
    PyErr_Clear();
    PyObject *s = name ? PyUnicode_FromFormat("thread %lu (%S)", ident, name)
                       : PyUnicode_FromFormat("thread %lu", ident);
    Py_XDECREF(name);
    return s;
}

/* The FiberError for a switch from `th` into a fiber of `owner` (NULL or
 * ended: a thread that has ended).  greenlet's words for greenlets. */
static void wrong_thread(pyc_thread *th, pyc_thread *owner, int greenlet)
{
    PyObject *exc = th->mstate->FiberError;
    int ended = !owner || !PYC_LOAD(&owner->alive);
    if (greenlet && ended) {
        PyErr_SetString(exc, "cannot switch to a different thread (which happens to have exited)");
    } else if (greenlet) {
        PyErr_Format(exc, "Cannot switch to a different thread\n\tCurrent:  %R\n\tExpected: %R",
                     (PyObject *)th->main, (PyObject *)owner->main);
    } else if (ended) {
        PyErr_SetString(exc, "cannot switch to a fiber of a thread that has ended");
    } else {
        PyObject *theirs = describe_thread(owner->ident), *ours = describe_thread(th->ident);
        if (theirs && ours)
            PyErr_Format(exc, "cannot switch to a fiber of another thread: it belongs to %U, "
                              "the caller runs in %U", theirs, ours);
        Py_XDECREF(theirs);
        Py_XDECREF(ours);
    }
}

int pyc_check_switchable(pyc_thread *th, pyc_fiber *f, const char *finalizing_msg)
{
    pyc_thread *owner = lineage_thread(f);
    if (owner != th) {
        PyTypeObject *g = th->mstate->greenlet_type;
        wrong_thread(th, owner, g && PyObject_TypeCheck((PyObject *)f->self, g));
        return -1;
    }
    if (f->finalizing) {
        PyErr_SetString(th->mstate->FiberError, finalizing_msg);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* starting                                                             */

static pc_fiber *fiber_entry(pc_fiber *core, void *arg);

void pyc_bind(pyc_thread *th, pyc_fiber *f)
{
    pc_fiber_init(&f->core, &th->core, fiber_entry, f);
    f->thread = th;
    pyc_thread_incref(th);
}

void pyc_unbind(pyc_fiber *f)
{
    pyc_thread *th = f->thread;
    memset(&f->core, 0, sizeof f->core);       /* PC_NEW, no thread */
    f->thread = NULL;
    pyc_thread_decref(th);
}

/* Before a new fiber starts, the fiber that starts it looks up its `run`
 * (greenlet's order): a subclass's run method, __getattribute__ or a
 * descriptor may run any code, even switches that start this very fiber.
 * The payload is kept aside meanwhile.  Returns 0 with *run_out set, 1 if
 * that code started the fiber (switch to it as to any suspended fiber), -1
 * with an exception (the payload is dropped). */
static int prepare_start(pyc_thread *th, PyFiber *target, PyObject **run_out)
{
    PyObject *run;
    pyc_fiber *f = target->impl;
    if (Py_TYPE(target) == th->mstate->fiber_type) {
        /* The plain type: its data descriptor is all a lookup could find. */
        run = Py_XNewRef(f->run);
        if (!run) {
            drop_payload(th);
            PyErr_SetString(PyExc_AttributeError, "run");
            return -1;
        }
        *run_out = run;
        return 0;
    }
    pass_kind kind = th->pass;
    PyObject *value = th->pass_value, *kwargs = th->pass_kwargs;
    th->pass_value = th->pass_kwargs = NULL;
    run = PyObject_GetAttr((PyObject *)target, th->mstate->str_run);
    th->pass = kind;
    th->pass_value = value;
    th->pass_kwargs = kwargs;
    if (!run) {
        drop_payload(th);
        return -1;
    }
    if (f->core.state != PC_NEW) {
        Py_DECREF(run);
        return 1;
    }
    /* The lookup may also have given it a parent in another thread. */
    if (pyc_check_switchable(th, f, "cannot switch into a fiber from its own finalizer") < 0) {
        Py_DECREF(run);
        drop_payload(th);
        return -1;
    }
    *run_out = run;
    return 0;
}

/* ------------------------------------------------------------------ */
/* switching                                                            */

PyObject *__attribute__((noinline)) pyc_switch(pyc_thread *th, PyFiber *target)
{
    if (__builtin_expect(pyc_tl_in_gc, 0)) {   /* see thread.h */
        drop_payload(th);
        PyErr_SetString(th->mstate->FiberError,
                        "cannot switch while the garbage collector runs in this thread "
                        "(e.g. from a __del__ or weakref callback it calls)");
        return NULL;
    }
    PyFiber *origin = th->current;
    PyObject *run = NULL;
    /* Taken at once: it describes this call of switch(), and no other. */
    PyObject *const *stack_top = th->stack_top;
    th->stack_top = NULL;
    while (target && target->impl->core.state != PC_SUSPENDED) {
        target = resolve_target(target, th->pass == PASS_ERROR);
        if (!target || target->impl->core.state != PC_NEW)
            break;
        int rc = prepare_start(th, target, &run);
        if (rc < 0)
            return NULL;
        if (rc == 0)
            break;
    }
    if (!target) {
        drop_payload(th);
        PyErr_SetString(th->mstate->FiberError, "no live fiber to switch to");
        return NULL;
    }
    if (target == origin)
        return take_payload(th);

    pyc_fiber *tf = target->impl;
    int fresh = tf->core.state == PC_NEW;
    if (fresh)
        pyc_bind(th, tf);
    pyc_pystate_save(&origin->impl->pystate, th->ts, stack_top);
    th->origin = origin;                    /* th->current's reference moves */
    th->current = (PyFiber *)Py_NewRef(target);
    th->start_run = run;                    /* NULL unless target is new */
    int rc = pc_switch(&tf->core);
    if (rc != PC_OK) {
        /* Nothing happened: we are still `origin`. */
        th->current = origin;
        th->origin = NULL;
        Py_CLEAR(th->start_run);
        if (fresh)
            pyc_unbind(tf);
        Py_DECREF(target);
        pyc_pystate_restore(&origin->impl->pystate, th->ts);
        drop_payload(th);
        if (rc == PC_ENOMEM)
            return PyErr_NoMemory();
        PyErr_SetString(th->mstate->FiberError, "invalid switch");
        return NULL;
    }
    /* Resumed, later, by some fiber: `origin` is us again. */
    pyc_pystate_restore(&origin->impl->pystate, th->ts);
    return arrive(th, origin);
}

void pyc_kill(pyc_thread *th, PyFiber *self)
{
    pyc_fiber *f = self->impl;
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    PyFiber *old_parent = f->parent;
    f->parent = (PyFiber *)Py_NewRef(th->current);
    PyErr_SetNone(th->mstate->FiberExit);
    th->pass = PASS_ERROR;
    PyObject *r = pyc_switch(th, self);
    if (r)
        Py_DECREF(r);
    else if (PyErr_ExceptionMatches(th->mstate->FiberExit))
        PyErr_Clear();
    else
        PyErr_WriteUnraisable((PyObject *)self);
    Py_SETREF(f->parent, old_parent);
    PyErr_Restore(et, ev, etb);
}

void pyc_kill_pending(pyc_thread *th)
{
    if (pyc_tl_in_gc)
        return;                             /* at the collection's "stop" */
    pyc_pending *node = pyc_thread_take_pending(th);
    while (node) {
        pyc_fiber *f = PYC_CONTAINER(node, pyc_fiber, pending);
        node = node->next;
        PyFiber *self = f->self;
        if (f->core.state == PC_SUSPENDED)
            pyc_kill(th, self);
        Py_DECREF(self);                    /* the queue's reference */
    }
}

/* ------------------------------------------------------------------ */
/* a fiber's first and last steps, on its own stack                     */

/* Out of line, like fiber_end(), so that only fiber_entry's small frame
 * stays under the fiber's stack while it runs.  What run() is called with
 * is owned by the fiber object (f->call, visited by the GC) until run()
 * returns, not by this C frame.  Returns 0 if the tracer failed (run() is
 * then not called). */
static __attribute__((noinline)) int fiber_begin(pyc_fiber *f, pyc_entry_frame *ef)
{
    pyc_thread *th = f->thread;
    pyc_thread_link(th, &f->link);
    f->call.run = th->start_run;            /* looked up by prepare_start() */
    th->start_run = NULL;
    PyObject *context = f->context;
    f->context = NULL;
    pyc_pystate_start(th->ts, ef, &th->pool, context);

    f->call.kind = th->pass;
    f->call.value = th->pass_value;
    f->call.kwargs = th->pass_kwargs;
    th->pass_value = th->pass_kwargs = NULL;
    PyFiber *from = th->origin;
    th->origin = NULL;
    int ok = !th->trace || call_trace(th, th->mstate->str_switch, from, f->self) == 0;
    Py_XDECREF(from);
    /* The fiber has started: drop what `run` was set to.  Its destructor
     * may run any code, switches included: this fiber is a normal running
     * fiber by now (greenlet behaves the same). */
    Py_CLEAR(f->run);
    return ok;
}

static pc_fiber *fiber_end(pyc_fiber *f, PyObject *result);

/* The first frame of every fiber but main: run, then hand the result (or
 * the exception) to the nearest live ancestor and never come back. */
static pc_fiber *fiber_entry(pc_fiber *core, void *arg)
{
    pyc_fiber *f = (pyc_fiber *)arg;
    pyc_entry_frame ef;
    PyObject *result = NULL;
    (void)core;
    if (fiber_begin(f, &ef)) {
        if (f->call.kind == PASS_VALUE)
            result = PyObject_CallOneArg(f->call.run, f->call.value);
        else
            result = PyObject_Call(f->call.run, f->call.value, f->call.kwargs);
    }
    return fiber_end(f, result);
}

/* A finished fiber's outcome: a value, or an exception held here while
 * other code runs (fetched, so that code cannot clobber or see it). */
typedef struct {
    PyObject *value;
    PyObject *et, *ev, *etb;
} outcome;

/* The nearest live ancestor, which receives the outcome.  A new one is
 * started with it (its run looked up now, which may run any code); if its
 * run cannot even be found, that error goes further up (and the ancestor
 * stays unstarted, as in greenlet).  NULL when every ancestor is dead. */
static PyFiber *choose_receiver(pyc_thread *th, pyc_fiber *self, outcome *o, PyObject **run)
{
    PyFiber *next = self->parent;
    for (;;) {
        next = resolve_target(next, o->value == NULL);
        if (!next || next->impl->core.state != PC_NEW)
            return next;
        th->pass = PASS_VALUE;
        th->pass_value = o->value;
        th->pass_kwargs = NULL;
        o->value = NULL;
        int rc = prepare_start(th, next, run);
        if (rc >= 0) {
            o->value = th->pass_value;       /* 1: the lookup started it */
            th->pass_value = NULL;
            return next;
        }
        PyErr_Fetch(&o->et, &o->ev, &o->etb);
        next = next->impl->parent;
    }
}

/* Memory for the final switch ran out (pc_fiber_prepare_exit): make room,
 * first without running code (pycoro's own caches), then with the GC.
 * Returns 0 once nothing more can be tried. */
static int make_room(pyc_thread *th, int attempt)
{
    if (attempt == 0) {
        pyc_pool_clear(&th->pool);
        return 1;
    }
    if (attempt == 1) {
        PyGC_Collect();
        return 1;
    }
    return 0;
}

/* A fiber's last steps: hand the outcome on and pick the next fiber. */
static __attribute__((noinline)) pc_fiber *fiber_end(pyc_fiber *f, PyObject *result)
{
    pyc_thread *th = f->thread;
    pyc_module_state *st = th->mstate;
    outcome o = { result, NULL, NULL, NULL };
    /* A FiberExit that ends run() is a normal end: the parent gets the
     * exception object as the value (as greenlet does with GreenletExit). */
    if (!result && PyErr_ExceptionMatches(st->FiberExit)) {
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        PyErr_NormalizeException(&et, &ev, &etb);
        o.value = ev ? ev : Py_NewRef(Py_None);
        Py_XDECREF(et);
        Py_XDECREF(etb);
    } else if (!result) {
        PyErr_Fetch(&o.et, &o.ev, &o.etb);
    }

    /* Drop what the fiber held: its start arguments, handled exception and
     * context.  Destructors run here, switches included. */
    Py_CLEAR(f->call.run);
    Py_CLEAR(f->call.value);
    Py_CLEAR(f->call.kwargs);
    /* Like greenlet, a finished fiber keeps the context it ran in. */
    f->context = Py_XNewRef(pyc_ts_context(th->ts));
    pyc_pystate_drop(th->ts);
    pyc_thread_unlink(th, &f->link);

    PyFiber *next;
    PyObject *next_run = NULL;
    for (int attempt = 0;; attempt++) {
        next = choose_receiver(th, f, &o, &next_run);
        if (!next || next == f->self) {
            /* Every ancestor is dead: only possible if the thread is ending. */
            if (o.value) {
                Py_CLEAR(o.value);
            } else {
                PyErr_Restore(o.et, o.ev, o.etb);
                o.et = o.ev = o.etb = NULL;
                PyErr_WriteUnraisable((PyObject *)f->self);
            }
            o.value = Py_NewRef(st->empty_tuple);
            next = th->main;
        }
        pyc_fiber *nf = next->impl;
        int fresh = nf->core.state == PC_NEW;
        if (fresh)
            pyc_bind(th, nf);
        if (pc_fiber_prepare_exit(&nf->core) == PC_OK)
            break;
        if (fresh)
            pyc_unbind(nf);
        Py_CLEAR(next_run);
        if (make_room(th, attempt))
            continue;
        /* No memory even to hand the outcome over.  The fiber just above
         * this one on the stack can be resumed without saving anything
         * (invariant I1): it gets the MemoryError, with the lost outcome as
         * its context.  Nothing else could be done short of aborting. */
        PyObject *lost = o.value ? o.value : o.ev;
        PyErr_NoMemory();
        if (lost) {
            PyObject *et, *ev, *etb;
            PyErr_Fetch(&et, &ev, &etb);
            PyErr_NormalizeException(&et, &ev, &etb);
            if (ev && PyExceptionInstance_Check(lost))
                PyException_SetContext(ev, Py_NewRef(lost));
            PyErr_Restore(et, ev, etb);
        }
        Py_XDECREF(o.value);
        Py_XDECREF(o.et);
        Py_XDECREF(o.ev);
        Py_XDECREF(o.etb);
        o.value = NULL;
        PyErr_Fetch(&o.et, &o.ev, &o.etb);
        next = PYC_CONTAINER(f->core.prev, pyc_fiber, core)->self;
        if (pc_fiber_prepare_exit(f->core.prev) != PC_OK) {
            /* I1 broken: the fiber above needs no save by definition. */
            fputs("pycoro: fatal: the fiber above a finished one needed a save\n", stderr);
            abort();
        }
        break;
    }

    /* Nothing runs any more until the switch. */
    pyc_pystate_finish(th->ts, &th->pool);
    if (o.value) {
        th->pass = PASS_VALUE;
        th->pass_value = o.value;
    } else {
        th->pass = PASS_ERROR;
        th->pass_value = NULL;
        PyErr_Restore(o.et, o.ev, o.etb);
    }
    th->pass_kwargs = NULL;
    th->start_run = next_run;
    th->origin = f->self;                   /* th->current's reference */
    th->current = (PyFiber *)Py_NewRef(next);
    return &next->impl->core;
}
