/* Per-thread state of the binding: the core's pc_thread, the thread's main
 * fiber, the running fiber, and what is in flight during a switch.
 *
 * Found without a lookup through a thread-local pointer.  Its lifetime is
 * tied to the PyThreadState through a capsule in the thread-state dict:
 * when CPython clears that dict (the thread ends, or the interpreter
 * finalizes) the thread is marked dead, and its fibers can no longer be
 * switched to.  The struct itself is freed when its last fiber goes. */
#include "fiber.h"

__attribute__((tls_model("initial-exec"))) _Thread_local pyc_thread *pyc_tl_thread;

/* Fault injection for the tests: fail the n-th core allocation from now. */
static long alloc_fail_countdown;

static void *core_realloc(void *ctx, void *p, size_t n)
{
    if (alloc_fail_countdown > 0 && --alloc_fail_countdown == 0)
        return NULL;
    return PyMem_Realloc(p, n);
}

static void core_free(void *ctx, void *p) { PyMem_Free(p); }

void pyc_inject_alloc_failure(long nth) { alloc_fail_countdown = nth; }

void pyc_thread_decref(pyc_thread *th)
{
    if (--th->refcnt == 0) {
        pyc_pool_clear(&th->pool);
        PyMem_RawFree(th);
    }
}

/* The thread-state dict is being cleared: this thread is over. */
static void thread_ended(PyObject *capsule)
{
    pyc_thread *th = PyCapsule_GetPointer(capsule, "pycoro.thread");
    if (!th)
        return;
    /* Fibers other threads dropped: last chance to run their finally
     * blocks, from the thread's own main fiber. */
    if (th->pending_kill && th->current == th->main && pyc_tl_thread == th)
        pyc_kill_pending(th);
    th->alive = 0;
    if (pyc_tl_thread == th)
        pyc_tl_thread = NULL;
    /* Nothing will walk this thread's stack chain again. */
    th->core.current = NULL;
    PyFiber *cur = th->current, *main = th->main;
    th->current = th->main = NULL;
    if (main->core.state == PC_SUSPENDED)
        pyc_pystate_abandon(&main->pystate);   /* the thread ended mid-switch */
    main->core.state = PC_DEAD;
    Py_CLEAR(th->trace);
    Py_CLEAR(th->pending_kill);
    Py_XDECREF(cur);
    Py_XDECREF(main);
    pyc_thread_decref(th);
}

pyc_thread *pyc_thread_get(pyc_module_state *st)
{
    pyc_thread *th = pyc_tl_thread;
    if (th)
        return th;
    PyObject *dict = PyThreadState_GetDict();
    if (!dict) {
        PyErr_SetString(PyExc_RuntimeError, "pycoro: no thread state dict");
        return NULL;
    }
    /* Installed when pycoro is first used in the process (not at import),
     * so that merely importing pycoro changes nothing for other code. */
    pyc_chunk_cache_install();
    th = PyMem_RawCalloc(1, sizeof *th);
    if (!th) {
        PyErr_NoMemory();
        return NULL;
    }
    th->ts = PyThreadState_Get();
    th->mstate = st;
    th->refcnt = 1;                       /* the thread's own reference */
    th->alive = 1;
    PyFiber *main = pyc_fiber_new_main(st, th);
    if (!main) {
        PyMem_RawFree(th);
        return NULL;
    }
    pc_allocator alloc = { core_realloc, core_free, NULL };
    pc_thread_init(&th->core, &main->core, &alloc);
    th->main = main;
    Py_INCREF(main);
    th->current = main;                   /* main and current: two refs */
    PyObject *capsule = PyCapsule_New(th, "pycoro.thread", thread_ended);
    if (!capsule || PyDict_SetItem(dict, st->thread_key, capsule) < 0) {
        Py_XDECREF(capsule);
        return NULL;                      /* th leaks: only on a failing dict */
    }
    Py_DECREF(capsule);
    pyc_tl_thread = th;
    return th;
}
