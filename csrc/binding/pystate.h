/* pystate: the interpreter state a fiber carries -- the per-version layer.
 *
 * Owns: every access to CPython internals that changes between versions
 * (all PY_VERSION_HEX tests of the binding are in pystate.c): the
 * PyThreadState fields a fiber swaps in and out, its data-stack chunks, the
 * walk over a suspended fiber's frames (GC, introspection, release), and the
 * small compatibility shims the other layers need.
 * Calls: CPython only.  Called by: thread, switch, fiber.
 *
 * CPython keeps "where is this thread executing" in PyThreadState: frame
 * pointers, recursion and tracing depths, data stack, handled exception,
 * contextvars context, trashcan nesting.  Every fiber needs its own copy,
 * swapped in and out around the C-stack switch; the rest of the binding
 * sees only the opaque blocks below.
 */
#ifndef PYCORO_PYSTATE_H
#define PYCORO_PYSTATE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* A suspended fiber's saved thread-state fields (layout: pystate.c).  Its
 * size depends on the CPython version (104 bytes on 3.11, up to 216 on
 * 3.14t), so it is the last member of what holds it, allocated with
 * pyc_pystate_size() bytes: a fixed size would be the largest one, paid by
 * every fiber of every version.  Pointer-aligned, zero-initialized. */
typedef struct pyc_pystate { void *opaque[0]; } pyc_pystate;
size_t pyc_pystate_size(void);

/* Storage on a new fiber's own C stack that the interpreter links into its
 * frame chain while the fiber runs (a _PyCFrame on 3.11/3.12). */
typedef struct pyc_entry_frame { void *opaque[4]; } pyc_entry_frame;

/* Per-thread state of pystate.c: data-stack root chunks kept for reuse by
 * new fibers of one thread (CPython would mmap and munmap a fresh one for
 * each), and where the thread's first fiber started (3.12/3.13: the C
 * recursion count at the thread's stack base).  Zero-initialized. */
#define PYC_POOL_MAX 128
typedef struct pyc_chunk_pool {
    void *chunks[PYC_POOL_MAX];
    int n;
    int base_c_remaining;
    char *base_sp;
} pyc_chunk_pool;

/* ImportError for builds this binding does not support. */
int pyc_pystate_check_build(void);
int pyc_is_finalizing(void);

/* Move the running fiber's state out of `ts` into `s` (switching away).
 * `stack_top` is one past the last value-stack slot in use in the top
 * frame (the end of the switch() call's arguments when Python code calls
 * switch() directly), or NULL if unknown; it is checked before any use. */
void pyc_pystate_save(pyc_pystate *s, PyThreadState *ts, PyObject *const *stack_top);
/* Move `s` back into `ts` (resuming); `s` is empty afterwards. */
void pyc_pystate_restore(pyc_pystate *s, PyThreadState *ts);
/* Give `ts` a fresh state for a fiber that starts now: no frames; the
 * starter's recursion and tracing depths (a chain of fibers each started
 * from inside the previous one meets sys.getrecursionlimit() as nested
 * calls do; a fiber started inside a trace function is not traced); no
 * handled exception; `context` (stolen, may be NULL: a fresh empty one is
 * made on first use); a data-stack chunk from `pool`.  Runs on the new
 * fiber's stack; `ef` must live as long as the fiber runs.  Cannot fail:
 * without memory for a chunk, the fiber's first call raises MemoryError. */
void pyc_pystate_start(PyThreadState *ts, pyc_entry_frame *ef, pyc_chunk_pool *pool,
                       PyObject *context);
/* The fiber's run returned and every frame is popped: drop its handled
 * exception and context.  May run any code (destructors). */
void pyc_pystate_drop(PyThreadState *ts);
/* Then give its chunk back to `pool`.  Runs no code. */
void pyc_pystate_finish(PyThreadState *ts, pyc_chunk_pool *pool);
/* A suspended state that will never run again (its thread has ended, or
 * the interpreter is finalizing): drop what can be dropped without running
 * the fiber.  `release_frames`: also release what its frames hold (each
 * frame is cleared as if it had returned, without running its code; frame
 * objects still referenced elsewhere take over their frame's contents), so
 * nothing leaks but the value stacks of frames suspended inside a C call
 * (their depth is not recorded).  Without it the frames are abandoned.
 * Runs destructors.  `s` is empty afterwards. */
void pyc_pystate_discard(pyc_pystate *s, int release_frames);

/* The context of a suspended fiber (borrowed, may be NULL) / replace it. */
PyObject *pyc_pystate_context(pyc_pystate *s);
void pyc_pystate_set_context(pyc_pystate *s, PyObject *context /* stolen */);
/* The context of the running fiber (borrowed, may be NULL) / replace it. */
PyObject *pyc_ts_context(PyThreadState *ts);
void pyc_ts_set_context(PyThreadState *ts, PyObject *context /* stolen */);
/* Top Python frame of a suspended fiber (new reference) or NULL.  Any
 * thread may ask (the frames are heap data), with its own thread state. */
PyObject *pyc_pystate_frame(pyc_pystate *s);
/* GC: visit what the suspended fiber's saved state and frames own. */
int pyc_pystate_traverse(pyc_pystate *s, visitproc visit, void *arg);
/* Does the suspended fiber have Python frames? */
int pyc_pystate_has_frames(pyc_pystate *s);

void pyc_pool_clear(pyc_chunk_pool *pool);

/* ------------------------------------------------------------------ */
/* Free-threaded builds.  The binding's only Py_GIL_DISABLED tests are
 * here and in pystate.c; the other layers use these shims.
 *
 * With the GIL, every field other threads touch is protected by it and the
 * shims cost nothing.  Without it (3.13t/3.14t):
 *   - per-thread data needs nothing: a thread's record, its fibers' state,
 *     its tracer and its gc-phase flag are only touched by that thread;
 *   - the few fields another thread reads or writes (a record's count,
 *     `alive` and pending flags, a fiber's `orphaned`) use atomics;
 *   - the lists other threads change (a record's registry and pending
 *     queue, the process-wide chunk cache) take a pyc_lock: a spinlock,
 *     not a PyMutex, because PyMutex_Lock may detach the thread state when
 *     contended, which lets a stop-the-world pause (GC,
 *     sys._current_frames) look at this thread while it is half-way
 *     through a switch.  Every critical section is a few pointer moves
 *     with no Python call, so spinning (with sched_yield) is short.
 * Nothing process-wide is locked on the switch path. */
#ifdef Py_GIL_DISABLED
#  define PYC_FREE_THREADED 1
#else
#  define PYC_FREE_THREADED 0
#endif

#if PYC_FREE_THREADED
#  include <sched.h>
#endif

typedef struct pyc_lock { int held; } pyc_lock;

static inline void pyc_lock_acquire(pyc_lock *l)
{
#if PYC_FREE_THREADED
    while (__atomic_exchange_n(&l->held, 1, __ATOMIC_ACQUIRE)) {
        while (__atomic_load_n(&l->held, __ATOMIC_RELAXED))
            sched_yield();
    }
#else
    (void)l;
#endif
}

static inline void pyc_lock_release(pyc_lock *l)
{
#if PYC_FREE_THREADED
    __atomic_store_n(&l->held, 0, __ATOMIC_RELEASE);
#else
    (void)l;
#endif
}

/* A flag or count another thread may read or change meanwhile. */
#if PYC_FREE_THREADED
#  define PYC_LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#  define PYC_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#  define PYC_ADD(p, d) __atomic_add_fetch((p), (d), __ATOMIC_ACQ_REL)
#else
#  define PYC_LOAD(p) (*(p))
#  define PYC_STORE(p, v) ((void)(*(p) = (v)))
#  define PYC_ADD(p, d) (*(p) += (d))
#endif

/* Critical sections on free-threaded builds (3.13+); no-ops elsewhere. */
#ifdef Py_BEGIN_CRITICAL_SECTION
#  define PYC_LOCKED(obj) Py_BEGIN_CRITICAL_SECTION(obj)
#  define PYC_UNLOCKED() Py_END_CRITICAL_SECTION()
#else
#  define PYC_LOCKED(obj) {
#  define PYC_UNLOCKED() }
#endif

#endif
