/* Every PY_VERSION_HEX difference of the binding lives in this file.
 *
 * Per version, the PyThreadState fields a fiber owns (facts checked against
 * CPython's headers and by leaving each one out, see docs):
 *
 *   3.11  cframe (+ use_tracing), cframe->current_frame, recursion_remaining,
 *         datastack_chunk/top/limit, exc_info + exc_state.exc_value,
 *         context (+ context_ver), trash_delete_nesting.
 */
#include "pystate.h"

#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030C0000
#  error "pycoro: this pystate.c supports CPython 3.11"
#endif

#define Py_BUILD_CORE 1
#include "internal/pycore_frame.h"
#undef Py_BUILD_CORE

#include <string.h>

/* Root data-stack chunk of a new fiber.  CPython never frees a chunk whose
 * `previous` is NULL (pushes skip its first slot), so these stay ours. */
#define PYC_CHUNK_SIZE (16 * 1024)

typedef struct {
    _PyCFrame *cframe;
    _PyInterpreterFrame *current_frame;
    int recursion_depth;
    int trash_delete_nesting;
    _PyStackChunk *datastack_chunk;
    PyObject **datastack_top;
    PyObject **datastack_limit;
    _PyErr_StackItem *exc_info;
    PyObject *exc_value;
    PyObject *context;
} saved_state;

_Static_assert(sizeof(saved_state) <= sizeof(pyc_pystate), "pyc_pystate too small");
_Static_assert(sizeof(_PyCFrame) <= sizeof(pyc_entry_frame), "pyc_entry_frame too small");

#define S(s) ((saved_state *)(s)->opaque)

int pyc_pystate_check_build(void) { return 0; }

int pyc_is_finalizing(void) { return _Py_IsFinalizing(); }

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

/* The interpreter only re-checks its tracing flag when the cframe changes
 * hands, and that flag is per thread in truth: recompute it. */
static void update_use_tracing(PyThreadState *ts)
{
    ts->cframe->use_tracing =
        (ts->tracing == 0 && (ts->c_tracefunc || ts->c_profilefunc)) ? 255 : 0;
}

void pyc_pystate_save(pyc_pystate *ps, PyThreadState *ts)
{
    saved_state *s = S(ps);
    s->cframe = ts->cframe;
    s->current_frame = ts->cframe->current_frame;
    s->recursion_depth = ts->recursion_limit - ts->recursion_remaining;
    s->trash_delete_nesting = ts->trash_delete_nesting;
    s->datastack_chunk = ts->datastack_chunk;
    s->datastack_top = ts->datastack_top;
    s->datastack_limit = ts->datastack_limit;
    s->exc_info = ts->exc_info;
    s->exc_value = ts->exc_state.exc_value;   /* moved, not copied */
    ts->exc_state.exc_value = NULL;
    s->context = ts->context;                 /* moved */
    ts->context = NULL;
}

void pyc_pystate_restore(pyc_pystate *ps, PyThreadState *ts)
{
    saved_state *s = S(ps);
    ts->cframe = s->cframe;
    ts->cframe->current_frame = s->current_frame;
    update_use_tracing(ts);
    ts->recursion_remaining = ts->recursion_limit - s->recursion_depth;
    ts->trash_delete_nesting = s->trash_delete_nesting;
    ts->datastack_chunk = s->datastack_chunk;
    ts->datastack_top = s->datastack_top;
    ts->datastack_limit = s->datastack_limit;
    ts->exc_info = s->exc_info ? s->exc_info : &ts->exc_state;
    Py_XSETREF(ts->exc_state.exc_value, s->exc_value);
    Py_XSETREF(ts->context, s->context);
    ts->context_ver++;
    memset(s, 0, sizeof *s);
}

static _PyStackChunk *pool_take(pyc_chunk_pool *pool)
{
    _PyStackChunk *c;
    if (pool->n > 0) {
        c = pool->chunks[--pool->n];
    } else {
        c = PyMem_RawMalloc(PYC_CHUNK_SIZE);
        if (!c)
            return NULL;
    }
    c->previous = NULL;
    c->size = PYC_CHUNK_SIZE;
    c->top = 0;
    return c;
}

static void pool_give(pyc_chunk_pool *pool, _PyStackChunk *c)
{
    if (pool->n < PYC_POOL_MAX)
        pool->chunks[pool->n++] = c;
    else
        PyMem_RawFree(c);
}

void pyc_pool_clear(pyc_chunk_pool *pool)
{
    while (pool->n > 0)
        PyMem_RawFree(pool->chunks[--pool->n]);
}

int pyc_pystate_start(PyThreadState *ts, pyc_entry_frame *ef, pyc_chunk_pool *pool,
                      PyObject *context)
{
    _PyStackChunk *chunk = pool_take(pool);
    if (!chunk) {
        Py_XDECREF(context);
        PyErr_NoMemory();
        return -1;
    }
    _PyCFrame *cf = (_PyCFrame *)ef;
    cf->current_frame = NULL;
    cf->previous = &ts->root_cframe;
    ts->cframe = cf;
    update_use_tracing(ts);
    ts->recursion_remaining = ts->recursion_limit;
    ts->trash_delete_nesting = 0;
    ts->datastack_chunk = chunk;
    ts->datastack_top = &chunk->data[1];     /* slot 0 stays unused: root */
    ts->datastack_limit = (PyObject **)((char *)chunk + PYC_CHUNK_SIZE);
    ts->exc_info = &ts->exc_state;
    ts->exc_state.exc_value = NULL;
    ts->context = context;
    ts->context_ver++;
    return 0;
}

void pyc_pystate_finish(PyThreadState *ts, pyc_chunk_pool *pool)
{
    _PyStackChunk *chunk = ts->datastack_chunk;
    /* All frames are popped, so only our root chunk is left. */
    if (chunk && chunk->previous == NULL)
        pool_give(pool, chunk);
    ts->datastack_chunk = NULL;
    ts->datastack_top = ts->datastack_limit = NULL;
    Py_CLEAR(ts->exc_state.exc_value);
    Py_CLEAR(ts->context);
}

void pyc_pystate_abandon(pyc_pystate *ps)
{
    saved_state *s = S(ps);
    /* The frames in the data stack keep their references (leaked, never
     * freed under an object still in use); their memory is dropped. */
    Py_CLEAR(s->exc_value);
    Py_CLEAR(s->context);
    memset(s, 0, sizeof *s);
}

PyObject *pyc_pystate_frame(pyc_pystate *ps, PyThreadState *ts)
{
    saved_state *s = S(ps);
    if (!s->current_frame)
        return NULL;
    /* PyThreadState_GetFrame makes (and caches) the frame object of the
     * running frame; point it at the suspended one for the call.  The
     * suspended frames live in the fiber's data stack, on the heap. */
    _PyInterpreterFrame *saved = ts->cframe->current_frame;
    ts->cframe->current_frame = s->current_frame;
    PyFrameObject *f = PyThreadState_GetFrame(ts);
    ts->cframe->current_frame = saved;
    return (PyObject *)f;
}

int pyc_pystate_traverse(pyc_pystate *ps, visitproc visit, void *arg, int frames)
{
    saved_state *s = S(ps);
    Py_VISIT(s->exc_value);
    Py_VISIT(s->context);
    if (!frames)
        return 0;
    /* The suspended fiber alone owns its frames.  Visit what each frame
     * holds a strong reference to: the specials and the fast locals.  The
     * value stack is left out (its depth is not recorded while a frame is
     * in a call), which only errs towards keeping objects alive. */
    for (_PyInterpreterFrame *f = s->current_frame; f; f = f->previous) {
        if (f->owner != FRAME_OWNED_BY_THREAD)
            continue;
        Py_VISIT(f->frame_obj);
        Py_VISIT(f->f_locals);
        Py_VISIT(f->f_func);
        Py_VISIT(f->f_code);
        int n = f->f_code->co_nlocalsplus;
        for (int i = 0; i < n; i++)
            Py_VISIT(f->localsplus[i]);
    }
    return 0;
}
