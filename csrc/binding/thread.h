/* thread: the per-thread record of the binding.
 *
 * Owns: pyc_thread (one per OS thread that uses pycoro): the core's
 * pc_thread and its allocator (with the tests' fault injection), the
 * thread-local pointer that finds it with one load, its lifetime (a count
 * held by the thread while it lives and by every fiber bound to it), the
 * registry of its started fibers, the queue other threads use to hand it
 * fibers to unwind, and its data-stack chunk pool.  The fields the switch
 * and fiber layers keep here (the running fiber, the payload of a switch in
 * flight, the switch tracer) are stored, never interpreted, by this layer.
 * Calls: pystate (chunk pool), the core, CPython.  Called by: switch,
 * fiber, module.
 */
#ifndef PYCORO_THREAD_H
#define PYCORO_THREAD_H

#include "pystate.h"
#include "pycoro_core.h"

typedef struct PyFiber PyFiber;          /* fiberobj.h */
typedef struct pyc_fiber pyc_fiber;      /* fiberobj.h */
typedef struct pyc_module_state pyc_module_state;   /* mstate.h */

/* An intrusive doubly linked list node; a list is a circular ring through
 * its head.  An unlinked node has next == NULL. */
typedef struct pyc_link {
    struct pyc_link *prev, *next;
} pyc_link;

/* An intrusive singly linked stack node (the pending queue). */
typedef struct pyc_pending {
    struct pyc_pending *next;
} pyc_pending;

/* The struct that holds member `field` at address `ptr`. */
#define PYC_CONTAINER(ptr, type, field) ((type *)((char *)(ptr) - offsetof(type, field)))

/* How the values of a switch travel to the fiber that resumes. */
typedef enum {
    PASS_VALUE,   /* `value` is what switch() returns; a new fiber gets run(value) */
    PASS_ARGS,    /* `value` is an args tuple, `kwargs` a dict or NULL */
    PASS_ERROR    /* an exception is set in the thread state */
} pass_kind;

typedef struct pyc_thread {
    pc_thread core;
    PyThreadState *ts;
    pyc_module_state *mstate;
    unsigned long ident;         /* PyThread_get_thread_ident() */
    int alive;                   /* 0 once the OS thread has ended (PYC_LOAD) */
    Py_ssize_t refcnt;           /* the thread's own + one per bound fiber
                                    (any thread changes it: PYC_ADD) */

    /* The fiber layer's state (stored here, used by switch.c/fiber.c). */
    PyFiber *main;               /* strong while the thread lives */
    PyFiber *current;            /* strong: the running fiber */
    PyFiber *origin;             /* in flight: who switched to us */
    PyObject *trace;             /* settrace() function or NULL */
    pass_kind pass;              /* the payload in flight ... */
    PyObject *pass_value;
    PyObject *pass_kwargs;
    PyObject *start_run;         /* the callable a starting fiber runs */
    PyObject *const *stack_top;  /* end of switch()'s arguments (pystate.h) */

    /* What other threads touch, under `lock` (pystate.h: a no-op with the
     * GIL): the registry (fibers are unlinked by whichever thread frees
     * them) and the pending queue. */
    pyc_lock lock;
    pyc_link fibers;             /* started, unfinished fibers (registry) */
    pyc_pending *pending;        /* fibers other threads dropped (a stack) */
    int has_pending;             /* pending != NULL, read without the lock (PYC_LOAD) */
    int closed;                  /* the thread has ended: no more pending */
    pyc_chunk_pool pool;
} pyc_thread;

/* This thread's record, or NULL before its first use and after it ended.
 * initial-exec: one %fs-relative load, no __tls_get_addr call.  Process-
 * wide by nature (one per OS thread); the module refuses a second
 * interpreter, so it always belongs to the one interpreter that uses
 * pycoro. */
extern __attribute__((tls_model("initial-exec"))) _Thread_local pyc_thread *pyc_tl_thread;

/* > 0 while this thread runs a garbage collection (between gc.callbacks'
 * "start" and "stop", module.c).  CPython's collector keeps the heads of
 * its working lists in its own C frames: a switch would overwrite them
 * with another fiber's stack, and any object freed meanwhile would be
 * unlinked through them.  So no switch happens then: fibers the collector
 * finalizes are unwound at "stop", and switch() raises FiberError.  Per OS
 * thread, not per record: a record may be made during a collection. */
extern __attribute__((tls_model("initial-exec"))) _Thread_local int pyc_tl_in_gc;

/* A record for the calling thread, whose main fiber's core is `main_core`;
 * it becomes pyc_tl_thread.  NULL with MemoryError. */
pyc_thread *pyc_thread_new(pyc_module_state *st, pc_fiber *main_core);
/* The calling thread has ended: it is no longer pyc_tl_thread. */
void pyc_thread_detach(pyc_thread *th);
void pyc_thread_incref(pyc_thread *th);
void pyc_thread_decref(pyc_thread *th);

/* The registry: link a fiber's node when it starts, unlink when it ends or
 * is freed (any thread). */
void pyc_thread_link(pyc_thread *th, pyc_link *node);
void pyc_thread_unlink(pyc_thread *th, pyc_link *node);
static inline int pyc_link_is_linked(const pyc_link *node) { return node->next != NULL; }

/* Hand a fiber to its thread to be unwound there (any thread): push its
 * node.  0, or -1 (nothing pushed) once the thread has ended: then the
 * fiber is an orphan (pyc_thread_close has marked it).  The owner takes
 * the whole stack at once (NULL if empty). */
int pyc_thread_push_pending(pyc_thread *th, pyc_pending *node);
pyc_pending *pyc_thread_take_pending(pyc_thread *th);
/* The thread is ending: under the lock, call `each` on every fiber of the
 * registry, refuse further pushes and take the pending stack (returned).
 * `each` must not call back into this layer. */
pyc_pending *pyc_thread_close(pyc_thread *th, void (*each)(pyc_link *node));

/* Testing aid: fail the n-th core allocation from now (0: never). */
void pyc_inject_alloc_failure(long nth);

#endif
