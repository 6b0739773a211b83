/* The interpreter state a fiber carries: the per-version part of the binding.
 *
 * CPython keeps "where is this thread executing" in PyThreadState: frame
 * pointers, recursion depth, data stack, handled exception, contextvars
 * context, trashcan nesting.  Every fiber needs its own copy, swapped in and
 * out around the C-stack switch.  The field list changes with every minor
 * version, so everything that depends on PY_VERSION_HEX lives in pystate.c
 * and the rest of the binding sees only these opaque blocks.
 */
#ifndef PYCORO_PYSTATE_H
#define PYCORO_PYSTATE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* A suspended fiber's saved thread-state fields (layout: pystate.c; 168
 * bytes at most, on 3.12-3.14).  27 words keep the Fiber object at 416
 * bytes: when the core's pc_fiber grew by 8 (its FP environment), the
 * object moved to the next obmalloc size class, and on CPython 3.14 the
 * hub's leak test then saw a one-time RSS step of ~2 MiB (flat after
 * 400,000 more lifecycles: the allocator settling, not a leak). */
typedef struct pyc_pystate { void *opaque[27]; } pyc_pystate;

/* Storage on a new fiber's own C stack that the interpreter links into its
 * frame chain while the fiber runs (a _PyCFrame on 3.11/3.12). */
typedef struct pyc_entry_frame { void *opaque[4]; } pyc_entry_frame;

/* Per-thread state of pystate.c: data-stack chunks kept for reuse by new
 * fibers of one thread (CPython would mmap and munmap a fresh one for
 * each), and where the thread's first fiber started (3.12/3.13: the C
 * recursion count at the thread's stack base).  Zero-initialized. */
#define PYC_POOL_MAX 128
typedef struct pyc_chunk_pool {
    void *chunks[PYC_POOL_MAX];
    int n;
    int base_c_remaining;
    char *base_sp;
} pyc_chunk_pool;

/* Refuse builds this binding does not support (free-threaded). */
int pyc_pystate_check_build(void);

/* Move the running fiber's state out of `ts` into `s` (switching away). */
void pyc_pystate_save(pyc_pystate *s, PyThreadState *ts);
/* Move `s` back into `ts` (resuming); `s` is empty afterwards. */
void pyc_pystate_restore(pyc_pystate *s, PyThreadState *ts);
/* Give `ts` a fresh state for a fiber that starts now: no frames, the
 * starter's recursion and tracing depths, no handled exception, `context` (stolen, may be NULL: a fresh empty one is
 * made on first use), a data-stack chunk from `pool`.  Runs on the new
 * fiber's stack; `ef` must live as long as the fiber runs.  Cannot fail:
 * without memory for a chunk, the fiber's first call raises MemoryError. */
void pyc_pystate_start(PyThreadState *ts, pyc_entry_frame *ef, pyc_chunk_pool *pool,
                      PyObject *context);
/* The fiber's run returned: every frame is popped.  Drop its context and
 * exception and give its chunk back to `pool`. */
void pyc_pystate_finish(PyThreadState *ts, pyc_chunk_pool *pool);
/* A suspended state that will never run again (its thread is gone): drop
 * the references that can be dropped safely.  Its frames are abandoned. */
void pyc_pystate_abandon(pyc_pystate *s);

/* The context of a suspended fiber (borrowed, may be NULL) / replace it. */
PyObject *pyc_pystate_context(pyc_pystate *s);
void pyc_pystate_set_context(pyc_pystate *s, PyObject *context /* stolen */);
/* > 0 while the running fiber is inside a trace or profile function (or
 * pycoro's switch tracer): CPython's per-thread tracing depth, which each
 * fiber carries as its own. */
int pyc_ts_tracing(PyThreadState *ts);
/* The context of the running fiber (borrowed, may be NULL) / replace it. */
PyObject *pyc_ts_context(PyThreadState *ts);
void pyc_ts_set_context(PyThreadState *ts, PyObject *context /* stolen */);

/* Top Python frame of a suspended fiber (new reference) or NULL. */
PyObject *pyc_pystate_frame(pyc_pystate *s, PyThreadState *ts);
/* GC: visit what the suspended fiber's saved state and frames own. */
int pyc_pystate_traverse(pyc_pystate *s, visitproc visit, void *arg, int frames);

void pyc_pool_clear(pyc_chunk_pool *pool);
int pyc_is_finalizing(void);

#endif
