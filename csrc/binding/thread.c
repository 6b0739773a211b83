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
    /* Atomic: on a free-threaded build other threads allocate meanwhile. */
    if (__builtin_expect(__atomic_load_n(&alloc_fail_countdown, __ATOMIC_RELAXED) > 0, 0)
        && __atomic_sub_fetch(&alloc_fail_countdown, 1, __ATOMIC_RELAXED) == 0)
        return NULL;
    return PyMem_Realloc(p, n);
}

static void core_free(void *ctx, void *p)
{
    (void)ctx;
    PyMem_Free(p);
}

void pyc_inject_alloc_failure(long nth)
{
    __atomic_store_n(&alloc_fail_countdown, nth, __ATOMIC_RELAXED);
}

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
    PYC_STORE(&th->alive, 0);
    if (pyc_tl_thread == th)
        pyc_tl_thread = NULL;
}

void pyc_thread_incref(pyc_thread *th)
{
    PYC_ADD(&th->refcnt, 1);
}

void pyc_thread_decref(pyc_thread *th)
{
    if (PYC_ADD(&th->refcnt, -1) != 0)
        return;
    pyc_pool_clear(&th->pool);
    PyMem_RawFree(th);
}

/* ------------------------------------------------------------------ */
/* the registry                                                         */

void pyc_thread_link(pyc_thread *th, pyc_link *node)
{
    pyc_lock_acquire(&th->lock);
    node->prev = &th->fibers;
    node->next = th->fibers.next;
    th->fibers.next->prev = node;
    th->fibers.next = node;
    pyc_lock_release(&th->lock);
}

void pyc_thread_unlink(pyc_thread *th, pyc_link *node)
{
    pyc_lock_acquire(&th->lock);
    if (node->next) {
        node->prev->next = node->next;
        node->next->prev = node->prev;
        node->prev = node->next = NULL;
    }
    pyc_lock_release(&th->lock);
}

/* ------------------------------------------------------------------ */
/* fibers handed over by other threads                                  */

int pyc_thread_push_pending(pyc_thread *th, pyc_pending *node)
{
    pyc_lock_acquire(&th->lock);
    if (th->closed) {
        pyc_lock_release(&th->lock);
        return -1;
    }
    node->next = th->pending;
    th->pending = node;
    PYC_STORE(&th->has_pending, 1);
    pyc_lock_release(&th->lock);
    return 0;
}

pyc_pending *pyc_thread_take_pending(pyc_thread *th)
{
    pyc_lock_acquire(&th->lock);
    pyc_pending *all = th->pending;
    th->pending = NULL;
    PYC_STORE(&th->has_pending, 0);
    pyc_lock_release(&th->lock);
    return all;
}

pyc_pending *pyc_thread_close(pyc_thread *th, void (*each)(pyc_link *node))
{
    pyc_lock_acquire(&th->lock);
    for (pyc_link *n = th->fibers.next; n != &th->fibers; n = n->next)
        each(n);
    th->closed = 1;
    pyc_pending *all = th->pending;
    th->pending = NULL;
    PYC_STORE(&th->has_pending, 0);
    pyc_lock_release(&th->lock);
    return all;
}
