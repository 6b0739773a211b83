/* thread.c: the per-thread record (see thread.h for what it owns; it calls
 * pystate, the core and CPython). */
#include "thread.h"

__attribute__((tls_model("initial-exec"))) _Thread_local pyc_thread *pyc_tl_thread;
__attribute__((tls_model("initial-exec"))) _Thread_local int pyc_tl_in_gc;

/* ------------------------------------------------------------------ */
/* the core's allocator                                                 */

/* Fault injection for the tests: fail the n-th core allocation from now.
 * Process-wide (a testing aid, set from one thread). */
static long alloc_fail_countdown;

static void *core_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    if (alloc_fail_countdown > 0 && --alloc_fail_countdown == 0)
        return NULL;
    return PyMem_Realloc(p, n);
}

static void core_free(void *ctx, void *p)
{
    (void)ctx;
    PyMem_Free(p);
}

void pyc_inject_alloc_failure(long nth) { alloc_fail_countdown = nth; }

/* ------------------------------------------------------------------ */
/* lifetime                                                             */

pyc_thread *pyc_thread_new(pyc_module_state *st, pc_fiber *main_core)
{
    pyc_thread *th = PyMem_RawCalloc(1, sizeof *th);
    if (!th) {
        PyErr_NoMemory();
        return NULL;
    }
    th->ts = PyThreadState_Get();
    th->mstate = st;
    th->ident = PyThread_get_thread_ident();
    th->refcnt = 1;                       /* the thread's own reference */
    th->alive = 1;
    th->fibers.prev = th->fibers.next = &th->fibers;
    pc_allocator alloc = { core_realloc, core_free, NULL };
    pc_thread_init(&th->core, main_core, &alloc);
    pyc_tl_thread = th;
    return th;
}

void pyc_thread_detach(pyc_thread *th)
{
    th->alive = 0;
    if (pyc_tl_thread == th)
        pyc_tl_thread = NULL;
}

void pyc_thread_incref(pyc_thread *th)
{
#ifdef Py_GIL_DISABLED
    __atomic_fetch_add(&th->refcnt, 1, __ATOMIC_RELAXED);
#else
    th->refcnt++;
#endif
}

void pyc_thread_decref(pyc_thread *th)
{
#ifdef Py_GIL_DISABLED
    if (__atomic_sub_fetch(&th->refcnt, 1, __ATOMIC_ACQ_REL) != 0)
        return;
#else
    if (--th->refcnt != 0)
        return;
#endif
    pyc_pool_clear(&th->pool);
    PyMem_RawFree(th);
}

/* ------------------------------------------------------------------ */
/* the registry                                                         */

void pyc_thread_link(pyc_thread *th, pyc_link *node)
{
    pyc_mutex_lock(&th->lock);
    node->prev = &th->fibers;
    node->next = th->fibers.next;
    th->fibers.next->prev = node;
    th->fibers.next = node;
    pyc_mutex_unlock(&th->lock);
}

void pyc_thread_unlink(pyc_thread *th, pyc_link *node)
{
    pyc_mutex_lock(&th->lock);
    if (node->next) {
        node->prev->next = node->next;
        node->next->prev = node->prev;
        node->prev = node->next = NULL;
    }
    pyc_mutex_unlock(&th->lock);
}

/* ------------------------------------------------------------------ */
/* fibers handed over by other threads                                  */

void pyc_thread_push_pending(pyc_thread *th, pyc_pending *node)
{
    pyc_mutex_lock(&th->lock);
    node->next = th->pending;
    th->pending = node;
#ifdef Py_GIL_DISABLED
    __atomic_store_n(&th->has_pending, 1, __ATOMIC_RELEASE);
#else
    th->has_pending = 1;
#endif
    pyc_mutex_unlock(&th->lock);
}

pyc_pending *pyc_thread_take_pending(pyc_thread *th)
{
    pyc_mutex_lock(&th->lock);
    pyc_pending *all = th->pending;
    th->pending = NULL;
    th->has_pending = 0;
    pyc_mutex_unlock(&th->lock);
    return all;
}
