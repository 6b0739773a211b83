/* pycoro.Fiber: greenlet's semantics on the stack-copying core.
 *
 * A switch is three steps around pc_switch():
 *   1. the caller parks the payload (value, args or a raised exception) in
 *      its pyc_thread and saves its interpreter state (pystate.c);
 *   2. pc_switch() copies C stacks; the code after it runs in the fiber
 *      that is resumed, inside its own earlier call to do_switch();
 *   3. that fiber restores its interpreter state, takes the payload, and
 *      drops the reference to the fiber it came from (arrive()).
 * A new fiber arrives in fiber_entry() instead, on a fresh stack.
 */
#include "fiber.h"

#include "structmember.h"

static PyObject *fiber_error(pyc_thread *th, PyObject *exc, const char *msg)
{
    PyErr_SetString(exc, msg);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* payload: what travels with a switch                                  */

static void drop_payload(pyc_thread *th)
{
    Py_CLEAR(th->pass_value);
    Py_CLEAR(th->pass_kwargs);
}

/* What switch() returns to the fiber that resumes: greenlet's packing. */
static PyObject *take_payload(pyc_thread *th)
{
    PyObject *v = th->pass_value, *kw = th->pass_kwargs;
    th->pass_value = NULL;
    if (th->pass == PASS_VALUE)
        return v;
    if (th->pass == PASS_ERROR)
        return NULL;
    th->pass_kwargs = NULL;
    if (!kw && PyTuple_GET_SIZE(v) != 1)
        return v;                          /* () when nothing was passed */
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

/* ------------------------------------------------------------------ */
/* tracing                                                              */

/* Call the settrace() function with tracing disabled; a failing tracer is
 * removed and its exception replaces the payload.
 *
 * Re-entry: a switch made while any trace function runs (this one, or
 * sys.settrace/setprofile's) is not traced, whether the tracer itself or
 * code it calls makes it, in any fiber started from there.  The rule rides
 * on CPython's per-thread tracing depth (ts->tracing, raised by
 * PyThreadState_EnterTracing), which every fiber carries as its own and a
 * new fiber inherits: do_switch() reads it in the fiber that switches.  So
 * a tracer that creates and switches fibers runs once per switch it
 * observes, never recursively, and a tracer fiber that never returns leaves
 * the other fibers traced. */
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
    if (th->trace && !th->untraced) {
        PyObject *event = result ? th->mstate->str_switch : th->mstate->str_throw;
        if (call_trace(th, event, from, self) < 0)
            Py_CLEAR(result);
    }
    Py_XDECREF(from);
    return result;
}

/* ------------------------------------------------------------------ */
/* switching                                                            */

/* An exception thrown at a new fiber ends it unstarted; like any finished
 * fiber it keeps its context (greenlet keeps gr_context too). */
static void kill_unstarted(PyFiber *f)
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
        pc_state s = target->core.state;
        if (s == PC_RUNNING || s == PC_SUSPENDED)
            return target;
        if (s == PC_NEW) {
            if (!error)
                return target;
            kill_unstarted(target);
        }
        target = target->parent;
    }
    return NULL;
}

/* Switch from the running fiber to `target` with the payload parked in
 * th->pass*.  Returns what this fiber receives when it is resumed. */
/* Before a new fiber starts, the fiber that starts it looks up its `run`
 * (greenlet's order): a subclass's run method, __getattribute__ or a
 * descriptor may run any code, even switches that start this very fiber.
 * The payload is kept aside meanwhile.  Returns 0 with *run_out set, 1 if
 * that code started the fiber (switch to it as to any suspended fiber), -1
 * with an exception (the payload is dropped). */
static int prepare_start(pyc_thread *th, PyFiber *target, PyObject **run_out)
{
    PyObject *run;
    if (Py_TYPE(target) == th->mstate->fiber_type) {
        /* The plain type: its data descriptor is all a lookup could find. */
        run = Py_XNewRef(target->run);
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
    if (target->core.state != PC_NEW) {
        Py_DECREF(run);
        return 1;
    }
    *run_out = run;
    return 0;
}

static __attribute__((noinline)) PyObject *do_switch(pyc_thread *th, PyFiber *target)
{
    PyFiber *origin = th->current;
    PyObject *run = NULL;
    while (target && target->core.state != PC_SUSPENDED) {
        target = resolve_target(target, th->pass == PASS_ERROR);
        if (!target || target->core.state != PC_NEW)
            break;
        int rc = prepare_start(th, target, &run);
        if (rc < 0)
            return NULL;
        if (rc == 0)
            break;
    }
    if (!target) {
        drop_payload(th);
        return fiber_error(th, th->mstate->FiberError, "no live fiber to switch to");
    }
    if (target == origin)
        return take_payload(th);

    th->untraced = pyc_ts_tracing(th->ts) > 0;
    pyc_pystate_save(&origin->pystate, th->ts);
    th->origin = origin;                    /* th->current's reference moves */
    th->current = (PyFiber *)Py_NewRef(target);
    th->start_run = run;                    /* NULL unless target is new */
    int rc = pc_switch(&target->core);
    if (rc != PC_OK) {
        /* Nothing happened: we are still `origin`. */
        th->current = origin;
        th->origin = NULL;
        Py_CLEAR(th->start_run);
        Py_DECREF(target);
        pyc_pystate_restore(&origin->pystate, th->ts);
        drop_payload(th);
        if (rc == PC_ENOMEM)
            return PyErr_NoMemory();
        return fiber_error(th, th->mstate->FiberError, "invalid switch");
    }
    /* Resumed, later, by some fiber: `origin` is us again. */
    pyc_pystate_restore(&origin->pystate, th->ts);
    return arrive(th, origin);
}

/* A new fiber's first steps on its own stack: fresh interpreter state, the
 * payload, the tracer.  Out of line, like fiber_end(), so that only
 * fiber_entry's small frame stays under the fiber's stack while it runs.
 * What run() is called with is kept in the fiber object until run()
 * returns (self->call), not in this C frame.  It is not visited by the GC
 * yet: visiting it made a collection crash in the leak tests (an object
 * freed while on the GC's list; not understood yet), so a cycle that runs
 * only through a fiber's start arguments is not collected, as in greenlet.
 * Returns 0 if the tracer failed (run() is then not called). */
static __attribute__((noinline)) int fiber_begin(PyFiber *self, pyc_entry_frame *ef)
{
    pyc_thread *th = self->thread;
    self->call.run = th->start_run;         /* looked up by prepare_start() */
    th->start_run = NULL;
    PyObject *context = self->context;
    self->context = NULL;
    pyc_pystate_start(th->ts, ef, &th->pool, context);

    self->call.kind = th->pass;
    self->call.value = th->pass_value;
    self->call.kwargs = th->pass_kwargs;
    th->pass_value = th->pass_kwargs = NULL;
    PyFiber *from = th->origin;
    th->origin = NULL;
    int ok = !th->trace || th->untraced
             || call_trace(th, th->mstate->str_switch, from, self) == 0;
    Py_XDECREF(from);
    /* The fiber has started: drop what `run` was set to.  Its destructor
     * may run any code, switches included: this fiber is a normal running
     * fiber by now (greenlet behaves the same). */
    Py_CLEAR(self->run);
    return ok;
}

static pc_fiber *fiber_end(PyFiber *self, PyObject *result);

/* The first frame of every fiber but main: run, then hand the result (or
 * the exception) to the nearest live ancestor and never come back. */
static pc_fiber *fiber_entry(pc_fiber *core, void *arg)
{
    PyFiber *self = (PyFiber *)arg;
    pyc_entry_frame ef;
    PyObject *result = NULL;
    if (fiber_begin(self, &ef)) {
        if (self->call.kind == PASS_VALUE)
            result = PyObject_CallOneArg(self->call.run, self->call.value);
        else
            result = PyObject_Call(self->call.run, self->call.value, self->call.kwargs);
    }
    return fiber_end(self, result);
}

/* A fiber's last steps: hand the result on and pick the next fiber. */
static __attribute__((noinline)) pc_fiber *fiber_end(PyFiber *self, PyObject *result)
{
    pyc_thread *th = self->thread;
    pyc_module_state *st = th->mstate;
    Py_CLEAR(self->call.run);
    Py_CLEAR(self->call.value);
    Py_CLEAR(self->call.kwargs);

    /* A FiberExit that ends run() is a normal end: the parent gets the
     * exception object as the value (as greenlet does with GreenletExit). */
    if (!result && PyErr_ExceptionMatches(st->FiberExit)) {
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        PyErr_NormalizeException(&et, &ev, &etb);
        result = ev ? ev : Py_NewRef(Py_None);
        Py_XDECREF(et);
        Py_XDECREF(etb);
    }

    /* Hand the result to the nearest live ancestor.  A new one is started
     * with it; if its run cannot even be found, that error goes further up
     * (and the ancestor stays unstarted, as in greenlet). */
    PyFiber *next = self->parent;
    PyObject *next_run = NULL;
    for (;;) {
        th->pass = result ? PASS_VALUE : PASS_ERROR;
        th->pass_value = result;
        th->pass_kwargs = NULL;
        result = NULL;
        next = resolve_target(next, th->pass == PASS_ERROR);
        if (!next || next->core.state != PC_NEW || prepare_start(th, next, &next_run) >= 0)
            break;
        next = next->parent;
    }
    if (!next || next == self) {
        /* Every ancestor is dead: only possible if the thread is ending. */
        PyErr_WriteUnraisable((PyObject *)self);
        drop_payload(th);
        th->pass = PASS_ARGS;
        th->pass_value = Py_NewRef(st->empty_tuple);
        next = th->main;
    }

    th->untraced = pyc_ts_tracing(th->ts) > 0;
    /* Like greenlet, a finished fiber keeps the context it ran in. */
    self->context = Py_XNewRef(pyc_ts_context(th->ts));
    pyc_pystate_finish(th->ts, &th->pool);
    th->start_run = next_run;
    th->origin = self;                      /* th->current's reference */
    th->current = (PyFiber *)Py_NewRef(next);
    return &next->core;
}

/* ------------------------------------------------------------------ */
/* the type                                                             */

static int check_thread(PyFiber *self)
{
    pyc_thread *th = self->thread;
    if (th == pyc_tl_thread)             /* NULL once the thread has ended */
        return 0;
    PyErr_SetString(th->mstate->FiberError,
                    th->alive ? "cannot switch to a fiber of another thread"
                              : "cannot switch to a fiber of a thread that has ended");
    return -1;
}

/* Throw FiberExit into a suspended fiber of this thread so that its
 * `finally` blocks run, with the caller as its parent for the duration. */
static void kill_suspended(PyFiber *self)
{
    pyc_thread *th = self->thread;
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    PyFiber *old_parent = self->parent;
    self->parent = (PyFiber *)Py_NewRef(th->current);
    PyErr_SetNone(th->mstate->FiberExit);
    th->pass = PASS_ERROR;
    PyObject *r = do_switch(th, self);
    if (r)
        Py_DECREF(r);
    else if (PyErr_ExceptionMatches(th->mstate->FiberExit))
        PyErr_Clear();
    else
        PyErr_WriteUnraisable((PyObject *)self);
    Py_SETREF(self->parent, old_parent);
    PyErr_Restore(et, ev, etb);
}

void pyc_kill_pending(pyc_thread *th)
{
    PyObject *list = th->pending_kill;
    th->pending_kill = NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        PyFiber *f = (PyFiber *)PyList_GET_ITEM(list, i);
        if (f->core.state == PC_SUSPENDED)
            kill_suspended(f);
    }
    Py_DECREF(list);
}

/* Can a dropped suspended fiber be unwound with FiberExit from here? */
static int can_kill_here(PyFiber *self)
{
    return self->core.state == PC_SUSPENDED && !self->is_main && self->thread->alive
           && !pyc_is_finalizing();
}

/* Finalizer (PEP 442): a suspended fiber that nobody can resume any more is
 * unwound with FiberExit.  Another thread's fiber is handed to that thread,
 * which kills it at its next switch, fiber creation or current(). */
static void fiber_finalize(PyObject *o)
{
    PyFiber *self = (PyFiber *)o;
    pyc_thread *th = self->thread;
    if (!can_kill_here(self))
        return;
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);             /* a finalizer leaves it alone */
    if (th == pyc_tl_thread) {
        kill_suspended(self);
    } else {
        if (!th->pending_kill)
            th->pending_kill = PyList_New(0);
        if (!th->pending_kill || PyList_Append(th->pending_kill, o) < 0)
            PyErr_WriteUnraisable(o);
    }
    PyErr_Restore(et, ev, etb);
}

/* The finalizer of subclasses that define __del__: unwind first, then call
 * __del__ (during which switching into the fiber is refused). */
static void fiber_finalize_with_del(PyObject *o)
{
    PyFiber *self = (PyFiber *)o;
    fiber_finalize(o);
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    PyObject *del = PyObject_GetAttrString((PyObject *)Py_TYPE(o), "__del__");
    if (del) {
        self->finalizing = 1;
        PyObject *r = PyObject_CallOneArg(del, o);
        self->finalizing = 0;
        if (!r)
            PyErr_WriteUnraisable(del);
        Py_XDECREF(r);
        Py_DECREF(del);
    } else {
        PyErr_Clear();
    }
    PyErr_Restore(et, ev, etb);
}

static int fiber_traverse(PyFiber *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->parent);
    Py_VISIT(self->run);
    Py_VISIT(self->context);
    Py_VISIT(self->dict);
    if (self->core.state == PC_SUSPENDED) {
        /* A suspended fiber alone owns its frames, so cycles through them
         * can be collected (then finalized with FiberExit).  Main's frames
         * belong to the running thread and another thread's fiber cannot
         * be unwound from here: those keep what they hold alive. */
        int frames = !self->is_main && self->thread->alive
                     && self->thread->ts == PyThreadState_Get();
        return pyc_pystate_traverse(&self->pystate, visit, arg, frames);
    }
    return 0;
}

static int fiber_clear(PyFiber *self)
{
    Py_CLEAR(self->run);
    Py_CLEAR(self->context);
    Py_CLEAR(self->dict);
    if (self->core.state != PC_SUSPENDED && self->core.state != PC_RUNNING)
        Py_CLEAR(self->parent);
    return 0;
}

static void fiber_dealloc(PyFiber *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (PyObject_CallFinalizerFromDealloc((PyObject *)self) < 0)
        return;                             /* resurrected */
    if (can_kill_here(self)) {
        /* Still suspended: its finalizer ran before (PEP 442 runs it once)
         * and the fiber survived that FiberExit, was resurrected and is now
         * dropped again.  Unwind it again, resurrected for the duration. */
        Py_SET_REFCNT(self, 1);
        fiber_finalize((PyObject *)self);
        Py_SET_REFCNT(self, Py_REFCNT(self) - 1);
        if (Py_REFCNT(self) > 0)
            return;                         /* resurrected again */
    }
    PyObject_GC_UnTrack(self);
    /* A fiber holds its parent: dropping the last of a long chain of
     * finished fibers would otherwise recurse once per fiber until the C
     * stack overflows.  The trashcan defers deep deallocations. */
    Py_TRASHCAN_BEGIN(self, fiber_dealloc)
    if (self->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)self);
    pyc_thread *th = self->thread;
    if (self->is_main) {
        pc_thread_fini(&th->core);
    } else {
        if (self->core.state == PC_SUSPENDED)
            pyc_pystate_abandon(&self->pystate);   /* could not be unwound */
        pc_fiber_release(&self->core);
    }
    fiber_clear(self);
    Py_CLEAR(self->parent);
    /* Only a fiber abandoned mid-run still holds these: its frames are
     * never resumed, and they hold references of their own. */
    Py_CLEAR(self->call.run);
    Py_CLEAR(self->call.value);
    Py_CLEAR(self->call.kwargs);
    pyc_thread_decref(th);
    tp->tp_free(self);
    Py_DECREF(tp);
    Py_TRASHCAN_END
}

static PyFiber *fiber_alloc(PyTypeObject *type, pyc_thread *th)
{
    PyFiber *self = (PyFiber *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->thread = th;
    th->refcnt++;
    return self;
}

PyFiber *pyc_fiber_new_main(pyc_module_state *st, pyc_thread *th)
{
    PyFiber *self = fiber_alloc(st->fiber_type, th);
    if (self)
        self->is_main = 1;                  /* core set by pc_thread_init */
    return self;
}

pyc_module_state *pyc_state_of_type(PyTypeObject *tp);

static PyObject *fiber_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    pyc_module_state *st = pyc_state_of_type(type);
    if (!st)
        return NULL;
    pyc_thread *th = pyc_thread_get(st);
    if (!th)
        return NULL;
    if (th->pending_kill)
        pyc_kill_pending(th);
    PyFiber *self = fiber_alloc(type, th);
    if (!self)
        return NULL;
    pc_fiber_init(&self->core, &th->core, fiber_entry, self);
    self->parent = (PyFiber *)Py_NewRef(th->current);
    return (PyObject *)self;
}

static int set_run(PyFiber *self, PyObject *run)
{
    if (self->core.state != PC_NEW) {
        PyErr_SetString(PyExc_AttributeError, "run cannot be set after the fiber has started");
        return -1;
    }
    Py_XSETREF(self->run, Py_XNewRef(run));
    return 0;
}

static int set_parent(PyFiber *self, PyObject *value)
{
    pyc_module_state *st = self->thread->mstate;
    if (!value) {
        PyErr_SetString(PyExc_AttributeError, "can't delete the parent attribute");
        return -1;
    }
    if (!PyObject_TypeCheck(value, st->fiber_type)) {
        PyErr_Format(PyExc_TypeError, "parent must be a Fiber, not %.200s", Py_TYPE(value)->tp_name);
        return -1;
    }
    PyFiber *p = (PyFiber *)value;
    if (self->is_main) {
        /* AttributeError, as greenlet: main's parent is read-only. */
        PyErr_SetString(PyExc_AttributeError, "cannot set the parent of a main fiber");
        return -1;
    }
    if (p->thread != self->thread) {
        PyErr_SetString(PyExc_ValueError, "parent cannot be a fiber of a different thread");
        return -1;
    }
    for (PyFiber *q = p; q; q = q->parent) {
        if (q == self) {
            PyErr_SetString(PyExc_ValueError, "cyclic parent chain");
            return -1;
        }
    }
    Py_SETREF(self->parent, (PyFiber *)Py_NewRef(p));
    return 0;
}

static int fiber_init(PyFiber *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"run", "parent", NULL};
    PyObject *run = Py_None, *parent = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OO:Fiber", kwlist, &run, &parent))
        return -1;
    if (run != Py_None && set_run(self, run) < 0)
        return -1;
    if (parent != Py_None && set_parent(self, parent) < 0)
        return -1;
    return 0;
}

/* The checks before switch() or throw() into `self`: this thread's fiber,
 * not being finalized; then the kills other threads left for us. */
static int check_switch_into(PyFiber *self, const char *finalizing_msg)
{
    if (check_thread(self) < 0)
        return -1;
    pyc_thread *th = self->thread;
    if (self->finalizing) {
        fiber_error(th, th->mstate->FiberError, finalizing_msg);
        return -1;
    }
    if (th->pending_kill)
        pyc_kill_pending(th);
    return 0;
}

/* Park the payload of switch() or switch(value). */
static inline void park_simple(pyc_thread *th, PyObject *const *args, Py_ssize_t nargs)
{
    th->pass = nargs ? PASS_VALUE : PASS_ARGS;
    th->pass_value = Py_NewRef(nargs ? args[0] : th->mstate->empty_tuple);
    th->pass_kwargs = NULL;
}

/* switch() with keywords or several arguments, or anything unusual. */
static __attribute__((noinline)) PyObject *fiber_switch_general(PyFiber *self,
                                                                PyObject *const *args,
                                                                Py_ssize_t nargsf,
                                                                PyObject *kwnames)
{
    if (check_switch_into(self, "cannot switch into a fiber from its own finalizer") < 0)
        return NULL;
    pyc_thread *th = self->thread;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (!kwnames && nargs <= 1) {
        park_simple(th, args, nargs);
    } else {
        PyObject *tuple = PyTuple_New(nargs);
        if (!tuple)
            return NULL;
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
                return NULL;
            }
        }
        th->pass = PASS_ARGS;
        th->pass_value = tuple;
        th->pass_kwargs = kw;
    }
    return do_switch(th, self);
}

/* switch(): the common call (this thread's fiber, no keywords, at most one
 * argument) parks the payload and jumps to do_switch() as a tail call, so
 * this frame is not among the bytes every switch copies. */
static PyObject *fiber_switch(PyFiber *self, PyObject *const *args, Py_ssize_t nargsf,
                              PyObject *kwnames)
{
    pyc_thread *th = self->thread;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (__builtin_expect(th != pyc_tl_thread || self->finalizing || th->pending_kill
                         || kwnames || nargs > 1, 0))
        return fiber_switch_general(self, args, nargsf, kwnames);
    park_simple(th, args, nargs);
    return do_switch(th, self);
}

/* Set the exception to throw from (typ, val, tb) as generator.throw() does. */
static int prepare_throw(PyObject *typ, PyObject *val, PyObject *tb)
{
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
        return 0;
    }
    if (PyExceptionInstance_Check(typ)) {
        if (val && val != Py_None) {
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
        return 0;
    }
    PyErr_Format(PyExc_TypeError,
                 "exceptions must be classes, or instances, not %.200s",
                 Py_TYPE(typ)->tp_name);
    return -1;
}

static PyObject *fiber_throw(PyFiber *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs > 3) {
        PyErr_Format(PyExc_TypeError, "throw expected at most 3 arguments, got %zd", nargs);
        return NULL;
    }
    if (check_switch_into(self, "cannot throw into a fiber from its own finalizer") < 0)
        return NULL;
    pyc_thread *th = self->thread;
    PyObject *typ = nargs > 0 ? args[0] : th->mstate->FiberExit;
    if (prepare_throw(typ, nargs > 1 ? args[1] : NULL, nargs > 2 ? args[2] : NULL) < 0)
        return NULL;
    th->pass = PASS_ERROR;
    th->pass_value = th->pass_kwargs = NULL;
    return do_switch(th, self);
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

static PyObject *fiber_repr(PyFiber *self)
{
    const char *state;
    switch (self->core.state) {
    case PC_NEW: state = "new"; break;
    case PC_RUNNING: state = "running"; break;
    case PC_SUSPENDED: state = "suspended"; break;
    default: state = "dead"; break;
    }
    return PyUnicode_FromFormat("<%s object at %p (%s%s)>", Py_TYPE(self)->tp_name, self,
                                self->is_main ? "main, " : "", state);
}

static int fiber_bool(PyFiber *self)
{
    return self->core.state == PC_RUNNING || self->core.state == PC_SUSPENDED;
}

static PyObject *get_run(PyFiber *self, void *c)
{
    if (self->run)
        return Py_NewRef(self->run);
    PyErr_SetString(PyExc_AttributeError, "run");
    return NULL;
}
static int set_run_attr(PyFiber *self, PyObject *v, void *c) { return set_run(self, v); }

static PyObject *get_parent(PyFiber *self, void *c)
{
    return Py_NewRef(self->parent ? (PyObject *)self->parent : Py_None);
}
static int set_parent_attr(PyFiber *self, PyObject *v, void *c) { return set_parent(self, v); }

static PyObject *get_dead(PyFiber *self, void *c)
{
    return PyBool_FromLong(self->core.state == PC_DEAD || self->core.state == PC_DYING);
}

static PyObject *get_started(PyFiber *self, void *c)
{
    return PyBool_FromLong(self->core.state != PC_NEW);
}

static PyObject *get_frame(PyFiber *self, void *c)
{
    /* A suspended fiber's frames live in its data stack, on the heap. */
    if (self->core.state == PC_SUSPENDED && self->thread->alive) {
        PyObject *f = pyc_pystate_frame(&self->pystate, self->thread->ts);
        if (f)
            return f;
    }
    Py_RETURN_NONE;
}

static PyObject *get_context(PyFiber *self, void *c)
{
    PyObject *ctx = NULL;
    switch (self->core.state) {
    case PC_RUNNING:
        if (check_thread(self) < 0) {
            PyErr_Clear();
            PyErr_SetString(PyExc_ValueError,
                            "cannot read the context of a fiber running in another thread");
            return NULL;
        }
        ctx = pyc_ts_context(self->thread->ts);
        break;
    case PC_SUSPENDED:
        ctx = pyc_pystate_context(&self->pystate);
        break;
    default:                                 /* new, or finished */
        ctx = self->context;
        break;
    }
    return Py_NewRef(ctx ? ctx : Py_None);
}

static int set_context(PyFiber *self, PyObject *v, void *c)
{
    if (v == Py_None)
        v = NULL;
    if (v && !PyContext_CheckExact(v)) {
        PyErr_Format(PyExc_TypeError, "context must be a contextvars.Context or None, not %.200s",
                     Py_TYPE(v)->tp_name);
        return -1;
    }
    Py_XINCREF(v);
    switch (self->core.state) {
    case PC_RUNNING:
        if (check_thread(self) < 0) {
            Py_XDECREF(v);
            PyErr_Clear();
            PyErr_SetString(PyExc_ValueError,
                            "cannot set the context of a fiber running in another thread");
            return -1;
        }
        pyc_ts_set_context(self->thread->ts, v);
        break;
    case PC_SUSPENDED:
        pyc_pystate_set_context(&self->pystate, v);
        break;
    default:                                 /* new, or finished */
        Py_XSETREF(self->context, v);
        break;
    }
    return 0;
}

static PyObject *get_stack_saved(PyFiber *self, void *c)
{
    return PyLong_FromSize_t(pc_saved_bytes(&self->core));
}

static PyObject *get_is_main(PyFiber *self, void *c) { return PyBool_FromLong(self->is_main); }

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
    {NULL},
};

static PyMemberDef fiber_members[] = {
    {"__dictoffset__", T_PYSSIZET, offsetof(PyFiber, dict), READONLY},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(PyFiber, weakreflist), READONLY},
    {NULL},
};

static PyMethodDef fiber_methods[] = {
    {"switch", (PyCFunction)(void (*)(void))fiber_switch, METH_FASTCALL | METH_KEYWORDS,
     "switch(*args, **kwargs)\n--\n\nStart or resume the fiber, passing values."},
    {"throw", (PyCFunction)(void (*)(void))fiber_throw, METH_FASTCALL,
     "throw(typ=FiberExit, val=None, tb=None)\n--\n\nRaise an exception in the fiber."},
    {"__init_subclass__", (PyCFunction)(void (*)(void))fiber_init_subclass,
     METH_VARARGS | METH_KEYWORDS | METH_CLASS, NULL},
    {NULL},
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
