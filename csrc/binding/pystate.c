/* pystate.c: every PY_VERSION_HEX difference of the binding (see pystate.h
 * for what this layer owns; it calls CPython only).
 *
 * Per version, the PyThreadState fields a fiber owns (checked against each
 * version's headers; what each one is for is in docs and in the comments
 * below):
 *
 *   3.11  cframe (+ cframe->use_tracing), cframe->current_frame,
 *         recursion_remaining (depth = recursion_limit - remaining),
 *         trash_delete_nesting.
 *   3.12  cframe (no use_tracing: tracing is sys.monitoring instrumentation,
 *         per code object, not per thread), cframe->current_frame,
 *         py_recursion_remaining (vs py_recursion_limit), c_recursion_remaining
 *         (vs a compile-time constant, so the raw value is the depth),
 *         trash.delete_nesting.
 *   3.13  current_frame (no cframe), py_recursion_remaining,
 *         c_recursion_remaining.  The trashcan counts its nesting in
 *         c_recursion_remaining, so nothing else is carried.
 *   3.14  current_frame, py_recursion_remaining, current_executor (the tier-2
 *         / JIT executor whose trace made the call that switched), the top
 *         frame's stackpointer.  The C recursion counters are gone: C stack
 *         overflow is detected by comparing the address of a local with
 *         c_stack_soft_limit / c_stack_hard_limit, computed once per thread
 *         from the thread's stack bounds.  Fibers run on the thread's own
 *         stack, at the same addresses as any other code of the thread, so
 *         those limits are right for every fiber and are never touched.
 *   all   datastack_chunk/top/limit, exc_info + exc_state.exc_value, context
 *         (+ context_ver), tracing (the depth of trace-function calls: a
 *         fiber suspended inside a tracer must not leave the thread's other
 *         fibers untraced; a new fiber inherits its starter's).
 *
 * Free-threaded builds (3.13t, 3.14t) carry two more:
 *   ft    critical_section: the thread's chain of PyCriticalSection records,
 *         which live on the C stack of the fiber that began them.  A switch
 *         is to the runtime what detaching the thread state is (another
 *         stack takes over): the fiber's sections are suspended as
 *         _PyThreadState_Detach() does (their mutexes unlocked, so another
 *         fiber of the thread can lock the same objects instead of waiting
 *         forever for a suspended one), the chain is carried, and the top
 *         section is re-locked when the fiber resumes, as attaching does.
 *         A new fiber starts with an empty chain.
 *   3.14t c_stack_refs: the thread's list of _PyCStackRef nodes, also on the
 *         C stack; the collector walks the running list only, so the
 *         objects of a suspended fiber's nodes are held (strong references)
 *         and visited until it resumes.  Written against the 3.14 headers;
 *         no 3.14t interpreter can be had here to run it.
 * Everything else a free-threaded thread state has (mimalloc heaps, biased
 * refcount queues, QSBR) is per OS thread and stays with it: fibers never
 * change threads.
 *
 * Left per thread on purpose: the raised exception (current_exception /
 * curexc_*: it is the payload of a throw), the trace and profile functions
 * (per thread, as in greenlet), and the trashcan's delete_later list
 * (objects whose refcount already reached zero: whichever fiber next
 * unwinds a trashcan destroys them, which is what the list is for).
 *
 * Value stacks.  A frame's value stack (the temporaries of the expression
 * being evaluated: at a switch, the switch() call's callable and arguments)
 * holds references too.  Its depth is recorded by the interpreter for a
 * frame that called another Python function inline (stacktop >= 0 on
 * 3.11-3.13; stackpointer on 3.14, recorded before every escaping call),
 * not for a frame that is executing a call into C (stacktop == -1), which
 * is what the top frame of a suspended fiber is doing: switch() is C.  For
 * that frame the switch records where its arguments end (they are the top
 * of the caller's stack when Python calls switch() directly), checked
 * against the frame's stack bounds before use.  With a depth known, the GC
 * sees the value stack and a discarded fiber releases it; otherwise only
 * the locals.
 *
 * The f_back problem (3.12+).  The interpreter links an "entry frame" that
 * lives on the C stack (owner FRAME_OWNED_BY_CSTACK) into the frame chain
 * each time C code calls into Python.  A suspended fiber's C stack is
 * somewhere else (its heap copy, or overwritten by another fiber), so
 * following `previous` into such a frame reads garbage: frame.f_back, a
 * traceback walk, or the GC would crash.  When a fiber is switched away
 * from, every complete frame of its chain is relinked past the incomplete
 * frames below it (recording the original links), so the suspended chain
 * holds only heap frames; the links are put back before it runs again.
 * Python code sees the same frames it would see while the fiber runs:
 * PyFrame_GetBack skips incomplete frames anyway.
 */
#include "pystate.h"

#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030F0000
#  error "pycoro: pystate.c supports CPython 3.11 to 3.14"
#endif

#define PYC_PY312 (PY_VERSION_HEX >= 0x030C0000)
#define PYC_PY313 (PY_VERSION_HEX >= 0x030D0000)
#define PYC_PY314 (PY_VERSION_HEX >= 0x030E0000)
/* _PyCFrame exists in 3.11 and 3.12 */
#define PYC_CFRAME (!PYC_PY313)
/* Entry frames on the C stack in the frame chain */
#define PYC_CSTACK_FRAMES PYC_PY312
/* ts->c_recursion_remaining: 3.12 and 3.13 (3.14 bounds C by stack address) */
#define PYC_C_RECURSION (PYC_PY312 && !PYC_PY314)
/* The trashcan's nesting in a field of its own until 3.13, which counts it
 * in c_recursion_remaining; TRASH_NESTING(ts) names it (below). */
#define PYC_TRASH_NESTING (!PYC_PY313)

#define Py_BUILD_CORE 1
#if PYC_PY314
#  include "internal/pycore_interpframe.h"
#  include "internal/pycore_frame.h"      /* struct _frame (PyFrameObject) */
#else
#  include "internal/pycore_frame.h"
#endif
#if PYC_FREE_THREADED
   /* their debug-build helpers have parameters unused in release builds */
#  pragma GCC diagnostic push
#  pragma GCC diagnostic ignored "-Wunused-parameter"
#  include "internal/pycore_critical_section.h"
#  if PYC_PY314
#    include "internal/pycore_tstate.h"
#    include "internal/pycore_stackref.h"
#  endif
#  pragma GCC diagnostic pop
#endif
#undef Py_BUILD_CORE

/* 3.14t's list of C-stack references (see the top). */
#define PYC_CSTACK_REFS (PYC_FREE_THREADED && PYC_PY314)

#include <string.h>

/* Root data-stack chunk of a new fiber.  CPython never frees a chunk whose
 * `previous` is NULL (pushes skip its first slot), so these stay ours.  Its
 * size is learned (see "Sizing the root chunk" below): a suspended fiber's
 * frames stay where they are until it resumes (frame objects, the frame
 * chain and the saved C stack point at them), so the only way to keep a
 * suspended fiber small is to give it a chunk no larger than what it uses.
 * Deeper calls get CPython's 16 KiB overflow chunks (mmap'ed, page by
 * page resident), which chunks.c caches so that crossing the boundary costs
 * no mmap/munmap.  Our chunks are always smaller than CPython's smallest
 * (DATA_STACK_CHUNK_SIZE), which is how chunk_free tells them apart. */
#define PYC_CHUNK_FIRST 1024             /* before anything is learned */
#define PYC_CHUNK_MIN 256
#define PYC_CHUNK_MAX (12 * 1024)        /* beyond: CPython's 16 KiB chunks */
#define PYC_CPYTHON_CHUNK (16 * 1024)    /* DATA_STACK_CHUNK_SIZE, 3.11-3.14 */
_Static_assert(PYC_CHUNK_MAX < PYC_CPYTHON_CHUNK, "our chunks are smaller than CPython's");

typedef __typeof__(((PyThreadState *)0)->datastack_top) stack_slot_ptr;

#if PYC_CSTACK_FRAMES
/* A link of the suspended chain changed by hide_cstack_frames(). */
typedef struct {
    _PyInterpreterFrame *frame;
    _PyInterpreterFrame *previous;   /* the original value */
} relink;
#  define PYC_INLINE_RELINKS 4
#endif

typedef struct {
#if PYC_CFRAME
    _PyCFrame *cframe;
#endif
    /* current_frame as the interpreter left it (may be an entry frame on the
     * C stack) and the first complete frame below it (introspection, GC). */
    _PyInterpreterFrame *current_frame;
#if PYC_CSTACK_FRAMES
    _PyInterpreterFrame *top;        /* (3.11: current_frame itself, TOP below) */
#endif
    int py_depth;
    int tracing;                     /* ts->tracing: > 0 inside a trace function */
#if PYC_C_RECURSION
    int c_recursion_remaining;
#endif
#if PYC_TRASH_NESTING
    int trash_delete_nesting;
#endif
    /* datastack_limit - datastack_chunk, always the chunk's size: in the
     * ints' padding instead of a pointer of its own (every suspended fiber
     * has this block; 3.11: 88 bytes, which puts the fiber record in a
     * smaller size class of pymalloc). */
    uint32_t datastack_limit_offset;
#if PYC_PY314
    __typeof__(((PyThreadState *)0)->current_executor) current_executor;
    _PyStackRef *stackpointer;
#else
    PyObject *const *stack_top;      /* see "Value stacks" above */
#endif
    _PyStackChunk *datastack_chunk;
    stack_slot_ptr datastack_top;
    _PyErr_StackItem *exc_info;
    PyObject *exc_value;
    PyObject *context;
#if PYC_FREE_THREADED
    uintptr_t critical_section;
#endif
#if PYC_CSTACK_REFS
    struct _PyCStackRef *c_stack_refs;
    PyObject **cref_held;            /* strong references to their objects */
    Py_ssize_t ncref_held;
#endif
#if PYC_CSTACK_FRAMES
    int nrelinks;
    int heap_cap;
    relink *heap;                    /* relinks past the inline ones */
    relink inline_relinks[PYC_INLINE_RELINKS];
#endif
} saved_state;

size_t pyc_pystate_size(void) { return sizeof(saved_state); }
#if PYC_CFRAME
_Static_assert(sizeof(_PyCFrame) <= sizeof(pyc_entry_frame), "pyc_entry_frame too small");
#endif

#define S(s) ((saved_state *)(s)->opaque)

/* The first complete frame of a suspended chain, NULL while the fiber runs
 * (an lvalue).  Before 3.12 every frame of the chain is complete. */
#if PYC_CSTACK_FRAMES
#  define TOP(s) ((s)->top)
#else
#  define TOP(s) ((s)->current_frame)
#endif

/* The switch's hint of the top frame's value-stack depth (3.11-3.13; from
 * 3.14 the interpreter records stackpointer itself). */
#if PYC_PY314
#  define TOP_HINT(s) ((PyObject *const *)NULL)
#else
#  define TOP_HINT(s) ((s)->stack_top)
#endif

#if PYC_CFRAME
#  define CURRENT_FRAME(ts) ((ts)->cframe->current_frame)
#else
#  define CURRENT_FRAME(ts) ((ts)->current_frame)
#endif
#if PYC_PY312
#  define TRASH_NESTING(ts) ((ts)->trash.delete_nesting)
#else
#  define TRASH_NESTING(ts) ((ts)->trash_delete_nesting)
#endif

/* The thread's int counters every fiber has its own value of (3.11:
 * trashcan nesting; 3.12: both; 3.13: C recursion; 3.14: none), copied into
 * the saved state (`saving`) or back into the thread state.  One function
 * for both directions, so that the fields are named once. */
static inline void copy_counters(saved_state *s, PyThreadState *ts, int saving)
{
#if PYC_C_RECURSION
    int *c_remaining = &ts->c_recursion_remaining;
    if (saving)
        s->c_recursion_remaining = *c_remaining;
    else
        *c_remaining = s->c_recursion_remaining;
#endif
#if PYC_TRASH_NESTING
    int *trash = &TRASH_NESTING(ts);
    if (saving)
        s->trash_delete_nesting = *trash;
    else
        *trash = s->trash_delete_nesting;
#endif
    (void)s, (void)ts, (void)saving;
}

int pyc_pystate_check_build(void)
{
    if ((Py_Version >> 16) != (PY_VERSION_HEX >> 16)) {
        PyErr_Format(PyExc_ImportError,
                     "pycoro was compiled for CPython %d.%d but runs on %d.%d: "
                     "the thread-state layout differs, rebuild it",
                     (int)(PY_VERSION_HEX >> 24), (int)((PY_VERSION_HEX >> 16) & 0xff),
                     (int)(Py_Version >> 24), (int)((Py_Version >> 16) & 0xff));
        return -1;
    }
    return 0;
}

int pyc_is_finalizing(void)
{
#if PYC_PY313
    return Py_IsFinalizing();
#else
    return _Py_IsFinalizing();
#endif
}

PyObject *pyc_ts_context(PyThreadState *ts) { return ts->context; }


void pyc_ts_set_context(PyThreadState *ts, PyObject *context)
{
    PyObject *old = ts->context;
    ts->context = context;
    ts->context_ver++;          /* invalidates the contextvars caches */
    Py_XDECREF(old);
}

PyObject *pyc_pystate_context(pyc_pystate *s) { return S(s)->context; }

void pyc_pystate_set_context(pyc_pystate *s, PyObject *context)
{
    PyObject *old = S(s)->context;
    S(s)->context = context;
    Py_XDECREF(old);
}

#if !PYC_PY312
/* The interpreter only re-checks its tracing flag when the cframe changes
 * hands, and that flag is per thread in truth: recompute it. */
static void update_use_tracing(PyThreadState *ts)
{
    ts->cframe->use_tracing =
        (ts->tracing == 0 && (ts->c_tracefunc || ts->c_profilefunc)) ? 255 : 0;
}
#endif

/* ------------------------------------------------------------------ */
/* recursion depth                                                      */

static inline int py_depth(PyThreadState *ts)
{
#if PYC_PY312
    return ts->py_recursion_limit - ts->py_recursion_remaining;
#else
    return ts->recursion_limit - ts->recursion_remaining;
#endif
}

static inline void set_py_depth(PyThreadState *ts, int depth)
{
#if PYC_PY312
    ts->py_recursion_remaining = ts->py_recursion_limit - depth;
#else
    ts->recursion_remaining = ts->recursion_limit - depth;
#endif
}

/* ------------------------------------------------------------------ */
/* hiding the C-stack frames of a suspended chain (3.12+)               */

#if PYC_CSTACK_FRAMES
static inline _PyInterpreterFrame *first_complete(_PyInterpreterFrame *f)
{
    while (f && _PyFrame_IsIncomplete(f))
        f = f->previous;
    return f;
}

static int add_relink(saved_state *s, _PyInterpreterFrame *f)
{
    relink *r;
    int i = s->nrelinks;
    if (i < PYC_INLINE_RELINKS) {
        r = &s->inline_relinks[i];
    } else {
        int j = i - PYC_INLINE_RELINKS;
        if (j >= s->heap_cap) {
            int cap = s->heap_cap ? 2 * s->heap_cap : 16;
            relink *h = PyMem_RawRealloc(s->heap, (size_t)cap * sizeof *h);
            if (!h)
                return -1;
            s->heap = h;
            s->heap_cap = cap;
        }
        r = &s->heap[j];
    }
    r->frame = f;
    r->previous = f->previous;
    s->nrelinks = i + 1;
    return 0;
}

static inline relink *relink_at(saved_state *s, int i)
{
    return i < PYC_INLINE_RELINKS ? &s->inline_relinks[i] : &s->heap[i - PYC_INLINE_RELINKS];
}

/* Runs while the C stack is still live. */
static void hide_cstack_frames(saved_state *s)
{
    _PyInterpreterFrame *f = s->top;
    while (f) {
        _PyInterpreterFrame *prev = f->previous;
        if (prev && _PyFrame_IsIncomplete(prev)) {
            _PyInterpreterFrame *to = first_complete(prev);
            if (add_relink(s, f) < 0) {
                /* No memory to record the link: end the visible chain at
                 * the last frame whose link is recorded (f_back is None
                 * there while suspended).  There is always one. */
                relink *last = relink_at(s, s->nrelinks - 1);
                last->frame->previous = NULL;
                return;
            }
            f->previous = to;
            prev = to;
        }
        f = prev;
    }
}

static void free_relinks(saved_state *s)
{
    s->nrelinks = 0;
    if (s->heap) {
        PyMem_RawFree(s->heap);
        s->heap = NULL;
        s->heap_cap = 0;
    }
}

static void unhide_cstack_frames(saved_state *s)
{
    for (int i = s->nrelinks - 1; i >= 0; i--) {
        relink *r = relink_at(s, i);
        r->frame->previous = r->previous;
    }
    free_relinks(s);
}
#endif

/* ------------------------------------------------------------------ */
/* free-threaded: critical sections and C-stack references              */

#if PYC_CSTACK_REFS
static void release_crefs(saved_state *s)
{
    PyObject **held = s->cref_held;
    Py_ssize_t n = s->ncref_held;
    s->cref_held = NULL;
    s->ncref_held = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        Py_DECREF(held[i]);
    PyMem_RawFree(held);
}

/* Runs while the fiber's C stack is still live: hold what its nodes refer
 * to.  Without memory for the array the objects are not held (the list is
 * empty at nearly every switch, so this allocates almost never). */
static void hold_crefs(saved_state *s, PyThreadState *ts)
{
    struct _PyCStackRef *head = ((_PyThreadStateImpl *)ts)->c_stack_refs;
    s->c_stack_refs = head;
    s->cref_held = NULL;
    s->ncref_held = 0;
    Py_ssize_t n = 0;
    for (struct _PyCStackRef *r = head; r; r = r->next)
        n++;
    if (n == 0 || !(s->cref_held = PyMem_RawMalloc((size_t)n * sizeof(PyObject *))))
        return;
    for (struct _PyCStackRef *r = head; r; r = r->next) {
        if (!PyStackRef_IsNull(r->ref) && !PyStackRef_IsTaggedInt(r->ref))
            s->cref_held[s->ncref_held++] = Py_NewRef(PyStackRef_AsPyObjectBorrow(r->ref));
    }
}
#endif

/* Switching away: suspend the fiber's critical sections and take its
 * C-stack lists out of `ts`. */
static inline void save_ft(saved_state *s, PyThreadState *ts)
{
#if PYC_FREE_THREADED
    if (ts->critical_section)
        _PyCriticalSection_SuspendAll(ts);
    s->critical_section = ts->critical_section;
#  if PYC_CSTACK_REFS
    hold_crefs(s, ts);
#  endif
#else
    (void)s;
    (void)ts;
#endif
}

/* A fiber starts: empty lists. */
static inline void start_ft(PyThreadState *ts)
{
#if PYC_FREE_THREADED
    ts->critical_section = 0;
#  if PYC_CSTACK_REFS
    ((_PyThreadStateImpl *)ts)->c_stack_refs = NULL;
#  endif
#else
    (void)ts;
#endif
}

/* Resuming, the last step (the thread state is the fiber's again): put its
 * lists back and re-lock its top critical section, which may wait (and
 * detach the thread state meanwhile, as attaching does). */
static inline void restore_ft(saved_state *s, PyThreadState *ts)
{
#if PYC_FREE_THREADED
#  if PYC_CSTACK_REFS
    ((_PyThreadStateImpl *)ts)->c_stack_refs = s->c_stack_refs;
    s->c_stack_refs = NULL;
    release_crefs(s);
#  endif
    ts->critical_section = s->critical_section;
    s->critical_section = 0;
    if (ts->critical_section)
        _PyCriticalSection_Resume(ts);
#else
    (void)s;
    (void)ts;
#endif
}

/* ------------------------------------------------------------------ */
/* data-stack chunks                                                    */

/* Sizing the root chunk.  A fiber's data stack at the moment it suspends is
 * what it keeps while suspended, and fibers of one program tend to suspend
 * at the same few depths (a hub's tasks, a server's handlers).  So the
 * switch samples, every SAMPLE_EVERY saves, how many bytes the suspending
 * fiber's frames take (all its chunks), and new fibers of the thread get a
 * root chunk that would hold the largest need of the last SAMPLE_WINDOW
 * samples: a need above the current size grows it at once, a window whose
 * needs were all smaller shrinks it when the window ends.  A fiber that
 * goes deeper than its chunk only gets CPython's overflow chunk, as every
 * fiber did before.  Main fibers (the thread's own root chunk, CPython's)
 * are not sampled.  The cost on the switch is a thread-local countdown
 * and, every SAMPLE_EVERY saves, the sample (callgrind, 3.11, main <-> fiber
 * round trip: 766 instructions in the extension before, 773.5 with
 * SAMPLE_EVERY 64, of which 3.6 the countdown, 2 the packed limit below and
 * 1.7 the samples; 777 with 16).  The window is 32 samples, about 2,000
 * saves: how long a size outlives the depth that asked for it. */
#define SAMPLE_EVERY 64
#define SAMPLE_RETRY 2              /* after a main fiber's save: the 3rd save on (odd, so
                                       a main <-> fiber ping-pong meets the fiber) */
#define SAMPLE_WINDOW 32
#define SAMPLE_FIRST_WINDOW 4       /* a thread's first: PYC_CHUNK_FIRST is a guess */

typedef struct {
    int countdown;                  /* saves until the next sample */
    int window;                     /* samples so far in this window */
    int windows;                    /* windows ended (up to 1: the first is short) */
    size_t window_max;              /* the largest need among them */
    size_t size;                    /* root chunk of new fibers (0: FIRST) */
} chunk_sizing;

static __attribute__((tls_model("initial-exec"))) _Thread_local chunk_sizing sizing;

static inline size_t root_chunk_size(void)
{
    return sizing.size ? sizing.size : PYC_CHUNK_FIRST;
}

/* A chunk size that holds `need` bytes (header and slots): CPython pushes a
 * frame only while the new top stays below the limit, so one slot more;
 * then the size that fills a whole 16-byte malloc block (whose header is
 * 8 bytes), within bounds. */
static size_t fit(size_t need)
{
    size_t size = ((need + 16 + 15) & ~(size_t)15) - 8;
    if (size < PYC_CHUNK_MIN)
        size = PYC_CHUNK_MIN;
    if (size > PYC_CHUNK_MAX)
        size = PYC_CHUNK_MAX;
    return size;
}

static __attribute__((noinline, cold)) void sample_data_stack(_PyStackChunk *c, char *top)
{
    sizing.countdown = SAMPLE_RETRY;
    if (!c)
        return;
    /* The top chunk's header and slots in use, then every chunk below
     * (`top` is the index its pushes had reached, the root's skipped slot
     * included). */
    size_t need = (size_t)(top - (char *)c);
    _PyStackChunk *root = c;
    while (root->previous) {
        root = root->previous;
        need += (size_t)root->top * sizeof(PyObject *);
    }
    if (root->size >= PYC_CPYTHON_CHUNK)
        return;                     /* CPython's root: a main fiber */
    sizing.countdown = SAMPLE_EVERY;
    if (need > sizing.window_max)
        sizing.window_max = need;
    if (fit(need) > root_chunk_size())
        sizing.size = fit(need);
    if (++sizing.window == (sizing.windows ? SAMPLE_WINDOW : SAMPLE_FIRST_WINDOW)) {
        sizing.size = fit(sizing.window_max);
        sizing.windows = 1;
        sizing.window = 0;
        sizing.window_max = 0;
    }
}

static inline void sample_on_save(saved_state *s)
{
    if (__builtin_expect(--sizing.countdown < 0, 0))
        sample_data_stack(s->datastack_chunk, (char *)s->datastack_top);
}

/* A root chunk of the current size: from the pool (one of another size,
 * made before the size changed, is freed instead), else new. */
static _PyStackChunk *pool_take(pyc_chunk_pool *pool)
{
    size_t size = root_chunk_size();
    _PyStackChunk *c = NULL;
    if (pool->n > 0) {
        c = pool->chunks[--pool->n];
        if (c->size != size) {
            PyMem_RawFree(c);
            c = NULL;
        }
    }
    if (!c && !(c = PyMem_RawMalloc(size)))
        return NULL;
    c->previous = NULL;
    c->size = size;
    c->top = 0;
    return c;
}

static void pool_give(pyc_chunk_pool *pool, _PyStackChunk *c)
{
    if (pool->n < PYC_POOL_MAX && c->size == root_chunk_size())
        pool->chunks[pool->n++] = c;
    else
        PyMem_RawFree(c);
}

void pyc_pool_clear(pyc_chunk_pool *pool)
{
    while (pool->n > 0)
        PyMem_RawFree(pool->chunks[--pool->n]);
}

/* Free a chunk: ours (a root smaller than CPython's smallest) to `pool` or
 * to the raw allocator, CPython's (made through the arena allocator) back
 * to it. */
static void chunk_free(_PyStackChunk *chunk, pyc_chunk_pool *pool)
{
    if (chunk->previous == NULL && chunk->size < PYC_CPYTHON_CHUNK) {
        if (pool)
            pool_give(pool, chunk);
        else
            PyMem_RawFree(chunk);
        return;
    }
    PyObjectArenaAllocator a;
    PyObject_GetArenaAllocator(&a);
    a.free(a.ctx, chunk, chunk->size);
}

/* ------------------------------------------------------------------ */
/* save / restore                                                       */

void pyc_pystate_save(pyc_pystate *ps, PyThreadState *ts, PyObject *const *stack_top)
{
    saved_state *s = S(ps);
#if PYC_CFRAME
    s->cframe = ts->cframe;
#endif
    s->current_frame = CURRENT_FRAME(ts);
    s->py_depth = py_depth(ts);
    s->tracing = ts->tracing;
    copy_counters(s, ts, 1);
    s->datastack_chunk = ts->datastack_chunk;
    s->datastack_top = ts->datastack_top;
    s->datastack_limit_offset =
        (uint32_t)((uintptr_t)ts->datastack_limit - (uintptr_t)ts->datastack_chunk);
    s->exc_info = ts->exc_info;
    s->exc_value = ts->exc_state.exc_value;   /* moved, not copied */
    ts->exc_state.exc_value = NULL;
    s->context = ts->context;                 /* moved */
    ts->context = NULL;
    save_ft(s, ts);
    sample_on_save(s);
#if PYC_CSTACK_FRAMES
    s->top = first_complete(s->current_frame);
    s->nrelinks = 0;
    hide_cstack_frames(s);
#endif
#if PYC_PY314
    (void)stack_top;             /* the interpreter recorded stackpointer */
    s->current_executor = ts->current_executor;
    s->stackpointer = TOP(s) ? TOP(s)->stackpointer : NULL;
#else
    s->stack_top = stack_top;
#endif
}

void pyc_pystate_restore(pyc_pystate *ps, PyThreadState *ts)
{
    saved_state *s = S(ps);
#if PYC_CSTACK_FRAMES
    unhide_cstack_frames(s);
#endif
#if PYC_PY314
    if (TOP(s))
        TOP(s)->stackpointer = s->stackpointer;
    ts->current_executor = s->current_executor;
#endif
#if PYC_CFRAME
    ts->cframe = s->cframe;
#endif
    CURRENT_FRAME(ts) = s->current_frame;
    ts->tracing = s->tracing;
#if !PYC_PY312
    update_use_tracing(ts);
#endif
    set_py_depth(ts, s->py_depth);
    copy_counters(s, ts, 0);
    ts->datastack_chunk = s->datastack_chunk;
    ts->datastack_top = s->datastack_top;
    ts->datastack_limit =
        (stack_slot_ptr)((uintptr_t)s->datastack_chunk + s->datastack_limit_offset);
    ts->exc_info = s->exc_info ? s->exc_info : &ts->exc_state;
    Py_XSETREF(ts->exc_state.exc_value, s->exc_value);
    Py_XSETREF(ts->context, s->context);
    ts->context_ver++;
    /* The references moved back; the other fields are rewritten by the
     * next save and read only while the fiber is suspended. */
    s->exc_value = s->context = NULL;
    TOP(s) = NULL;
    restore_ft(s, ts);
}

/* ------------------------------------------------------------------ */
/* a fiber's life                                                       */

void pyc_pystate_start(PyThreadState *ts, pyc_entry_frame *ef, pyc_chunk_pool *pool,
                       PyObject *context)
{
    /* Without a chunk of ours (no memory), CPython makes a root chunk at
     * the fiber's first call, or raises MemoryError there. */
    _PyStackChunk *chunk = pool_take(pool);
#if PYC_CFRAME
    _PyCFrame *cf = (_PyCFrame *)ef;
    memset(cf, 0, sizeof *cf);
    cf->previous = &ts->root_cframe;
    ts->cframe = cf;
#endif
    CURRENT_FRAME(ts) = NULL;
    /* The recursion and tracing depths stay the starter's (pystate.h). */
#if !PYC_PY312
    update_use_tracing(ts);
#endif
#if PYC_C_RECURSION
    /* The C count must follow the real C stack.  A new fiber's stack begins
     * where the fiber that starts it switched (so it inherits that fiber's
     * count, which is still in ts), except that the core restarts deep
     * chains at the thread's base: where the thread's first fiber (always
     * started by main) began.  `ef` sits at the same offset from the start
     * of every fiber's stack, so a fiber at or above the first one's `ef` is
     * at or above the base and gets at most the depth the thread had there. */
    char *here = (char *)ef;
    if (!pool->base_sp) {
        pool->base_sp = here;
        pool->base_c_remaining = ts->c_recursion_remaining;
    } else if (here >= pool->base_sp
               && ts->c_recursion_remaining < pool->base_c_remaining) {
        ts->c_recursion_remaining = pool->base_c_remaining;
    }
#else
    (void)ef;
#endif
#if PYC_TRASH_NESTING
    TRASH_NESTING(ts) = 0;
#endif
#if PYC_PY314
    ts->current_executor = NULL;
#endif
    ts->datastack_chunk = chunk;
    ts->datastack_top = chunk ? &chunk->data[1] : NULL;   /* slot 0 unused: root */
    ts->datastack_limit = chunk ? (stack_slot_ptr)((char *)chunk + chunk->size) : NULL;
    ts->exc_info = &ts->exc_state;
    ts->exc_state.exc_value = NULL;
    ts->context = context;
    ts->context_ver++;
    start_ft(ts);
}

void pyc_pystate_drop(PyThreadState *ts)
{
    Py_CLEAR(ts->exc_state.exc_value);
    Py_CLEAR(ts->context);
}

void pyc_pystate_finish(PyThreadState *ts, pyc_chunk_pool *pool)
{
    /* All frames are popped, so only the root chunk is left: ours, or one
     * CPython made (through the arena allocator) when we had none. */
    _PyStackChunk *chunk = ts->datastack_chunk;
    if (chunk && chunk->previous == NULL)
        chunk_free(chunk, pool);
    ts->datastack_chunk = NULL;
    ts->datastack_top = ts->datastack_limit = NULL;
}

/* ------------------------------------------------------------------ */
/* walking a suspended fiber's frames                                   */

static inline PyCodeObject *frame_code(_PyInterpreterFrame *f)
{
#if PYC_PY314
    PyObject *code = PyStackRef_AsPyObjectBorrow(f->f_executable);
#elif PYC_PY313
    PyObject *code = f->f_executable;
#else
    PyObject *code = (PyObject *)f->f_code;
#endif
    return code && PyCode_Check(code) ? (PyCodeObject *)code : NULL;
}

/* How many localsplus slots of a suspended frame hold references: the
 * locals, and the value stack when its depth is known (see the top). */
static int frame_slots(PyObject *const *hint, _PyInterpreterFrame *f, PyCodeObject *code)
{
    int nlocals = code->co_nlocalsplus;
    int most = nlocals + code->co_stacksize;
#if PYC_PY314
    (void)hint;
    if (f->stackpointer) {
        Py_ssize_t depth = f->stackpointer - f->localsplus;
        if (depth >= nlocals && depth <= most)
            return (int)depth;
    }
#else
    /* The running frame's stacktop is not kept up to date while it calls
     * C (it still holds its value from the frame's start, nlocals): for
     * the top frame the switch's own hint comes first. */
    if (hint) {
        Py_ssize_t depth = (PyObject **)hint - f->localsplus;
        if (depth >= nlocals && depth <= most)
            return (int)depth;
    }
    if (f->stacktop >= nlocals && f->stacktop <= most)
        return f->stacktop;
#endif
    return nlocals;
}

#if PYC_PY314
/* A _PyStackRef owns a reference unless it is NULL, a tagged int or a
 * borrowed/deferred reference (the low tag bit set). */
static inline PyObject *owned_ref(_PyStackRef r)
{
    if (r.bits != 0 && !PyStackRef_IsNull(r) && (r.bits & Py_TAG_BITS) == 0)
        return PyStackRef_AsPyObjectBorrow(r);
    return NULL;
}
#  define SLOT_REF(slot) owned_ref(slot)
#  define FUNC_REF(f) owned_ref((f)->f_funcobj)
#  define CODE_REF(f) owned_ref((f)->f_executable)
#elif PYC_PY313
#  define SLOT_REF(slot) (slot)
#  define FUNC_REF(f) ((f)->f_funcobj)
#  define CODE_REF(f) ((f)->f_executable)
#elif PYC_PY312
#  define SLOT_REF(slot) (slot)
#  define FUNC_REF(f) ((f)->f_funcobj)
#  define CODE_REF(f) ((PyObject *)(f)->f_code)
#else
#  define SLOT_REF(slot) (slot)
#  define FUNC_REF(f) ((PyObject *)(f)->f_func)
#  define CODE_REF(f) ((PyObject *)(f)->f_code)
#endif

int pyc_pystate_has_frames(pyc_pystate *ps) { return TOP(S(ps)) != NULL; }

PyObject *pyc_pystate_frame(pyc_pystate *ps)
{
    saved_state *s = S(ps);
    if (!TOP(s))
        return NULL;
    /* PyThreadState_GetFrame makes (and caches) the frame object of the
     * running frame; point the caller's thread state at the suspended one
     * for the call.  The suspended frames live in the fiber's data stack,
     * on the heap, so any thread may do this.  No GC meanwhile: a finalizer
     * that switches would save the borrowed frame as its own. */
    PyThreadState *ts = PyThreadState_Get();
    int gc_was_enabled = PyGC_Disable();
    _PyInterpreterFrame *saved = CURRENT_FRAME(ts);
    CURRENT_FRAME(ts) = TOP(s);
    PyFrameObject *f = PyThreadState_GetFrame(ts);
    CURRENT_FRAME(ts) = saved;
    if (gc_was_enabled)
        PyGC_Enable();
    return (PyObject *)f;
}

int pyc_pystate_traverse(pyc_pystate *ps, visitproc visit, void *arg)
{
    saved_state *s = S(ps);
    Py_VISIT(s->exc_value);
    Py_VISIT(s->context);
#if PYC_CSTACK_REFS
    for (Py_ssize_t i = 0; i < s->ncref_held; i++)
        Py_VISIT(s->cref_held[i]);
#endif
    /* The suspended fiber alone owns its frames.  Visit what each frame
     * holds a strong reference to: the specials, the locals and the value
     * stack where its depth is known.  Frames owned by a generator are
     * visited by the generator.  From 3.12 the chain below `top` holds only
     * complete heap frames (see above). */
    for (_PyInterpreterFrame *f = TOP(s); f; f = f->previous) {
        if (f->owner != FRAME_OWNED_BY_THREAD)
            continue;
        Py_VISIT(f->frame_obj);
        Py_VISIT(f->f_locals);
        Py_VISIT(FUNC_REF(f));
        Py_VISIT(CODE_REF(f));
        PyCodeObject *code = frame_code(f);
        if (!code)
            continue;
        int n = frame_slots(f == TOP(s) ? TOP_HINT(s) : NULL, f, code);
        for (int i = 0; i < n; i++)
            Py_VISIT(SLOT_REF(f->localsplus[i]));
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* discarding a fiber that can never run again                          */

/* The frame object `fo` outlives its frame: give it the frame's contents,
 * as CPython does when a frame object outlives its frame (the slots' and
 * the specials' references move with them).  It becomes a finished frame
 * of its own, with no f_back. */
static void frame_object_takes_over(PyFrameObject *fo, _PyInterpreterFrame *f, int slots)
{
    _PyInterpreterFrame *copy = (_PyInterpreterFrame *)fo->_f_frame_data;
    size_t size = (size_t)((char *)&f->localsplus[slots] - (char *)f);
    memcpy(copy, f, size);
    copy->owner = FRAME_OWNED_BY_FRAME_OBJECT;
    copy->previous = NULL;
    copy->frame_obj = fo;          /* the reference `f` held */
#if PYC_PY314
    copy->stackpointer = copy->localsplus + slots;
#else
    copy->stacktop = slots;
#endif
    fo->f_frame = copy;
    if (!PyObject_GC_IsTracked((PyObject *)fo))
        PyObject_GC_Track((PyObject *)fo);   /* it owns references now */
}

/* Release what a suspended frame holds, as if it had returned (its code is
 * not run). */
static void release_frame(_PyInterpreterFrame *f, PyObject *const *hint)
{
    PyCodeObject *code = frame_code(f);
    int slots = code ? frame_slots(hint, f, code) : 0;
    PyFrameObject *fo = f->frame_obj;
    if (fo && Py_REFCNT(fo) > 1) {
        frame_object_takes_over(fo, f, slots);
        Py_DECREF(fo);
        return;
    }
    f->frame_obj = NULL;
    Py_XDECREF(fo);
    for (int i = 0; i < slots; i++) {
#if PYC_PY314
        PyObject *o = SLOT_REF(f->localsplus[i]);
        f->localsplus[i] = PyStackRef_NULL;
        Py_XDECREF(o);
#else
        Py_CLEAR(f->localsplus[i]);
#endif
    }
    Py_CLEAR(f->f_locals);
    PyObject *func = FUNC_REF(f), *codeobj = CODE_REF(f);
    Py_XDECREF(func);
    Py_XDECREF(codeobj);
}

void pyc_pystate_discard(pyc_pystate *ps, int release_frames)
{
    saved_state *s = S(ps);
    _PyInterpreterFrame *top = TOP(s);
    PyObject *const *hint = TOP_HINT(s);      /* the top frame's stack depth */
    _PyStackChunk *chunk = s->datastack_chunk;
    PyObject *exc = s->exc_value, *context = s->context;
    TOP(s) = NULL;                       /* no introspection from now on */
    s->exc_value = s->context = NULL;
    s->datastack_chunk = NULL;
    if (release_frames) {
        /* Releasing a frame may run any code; the frames stay where they
         * are until their chunks are freed below, so the walk is safe. */
        for (_PyInterpreterFrame *f = top; f; f = f->previous)
            if (f->owner == FRAME_OWNED_BY_THREAD)
                release_frame(f, f == top ? hint : NULL);
        while (chunk) {
            _PyStackChunk *previous = chunk->previous;
            chunk_free(chunk, NULL);
            chunk = previous;
        }
    }
#if PYC_CSTACK_FRAMES
    free_relinks(s);
#endif
#if PYC_CSTACK_REFS
    release_crefs(s);
#endif
    Py_XDECREF(exc);
    Py_XDECREF(context);
    memset(s, 0, sizeof *s);
}
