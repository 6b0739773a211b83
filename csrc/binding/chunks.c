/* A cache in front of CPython's arena allocator for data-stack chunks.
 *
 * A fiber starts on a small root chunk of its own (pystate.c), so that a
 * suspended fiber costs little memory.  When its Python frames outgrow it,
 * CPython pushes an overflow chunk of DATA_STACK_CHUNK_SIZE bytes through
 * the arena allocator (an mmap) and pops it (a munmap) when the call that
 * needed it returns: a fiber whose calls keep crossing that boundary would
 * pay two system calls per call.  Keeping a few freed chunks of exactly that
 * size makes the crossing as cheap as a list pop.  Every other request (the
 * object allocator's arenas) goes straight to the allocator that was
 * installed before.  The allocator is process-wide: with the GIL it is
 * called with the GIL held; on free-threaded builds any thread calls it at
 * any time, so the cache, the reserve and the heap list are under a
 * pyc_lock (pystate.h: a spinlock held for a pop, a push or a search,
 * never across a call into an allocator).  It is installed when
 * a thread first uses pycoro; from then on it serves every data-stack
 * chunk of the process (greenlet's included), which is why the benchmarks
 * measure greenlet's allocation-bound workloads in processes of their own.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "chunks.h"
#include "pystate.h"

/* CPython's DATA_STACK_CHUNK_SIZE (the same in 3.11-3.14). */
#define CHUNK_SIZE (16 * 1024)
#define CACHE_MAX 64

static PyObjectArenaAllocator underlying;
static void *cache[CACHE_MAX];
static int cached;
static int installed;
static pyc_lock lock;             /* every list of this file */

/* CPython 3.11 cannot survive a failed frame push in its specialized call
 * instructions (CALL_PY_EXACT_ARGS, CALL_PY_WITH_DEFAULTS...): _PyFrame_Push
 * drops its reference to the function and the error path drops it again
 * from the value stack, so the function is freed while still in use (plain
 * 3.11.7 segfaults the same way under RLIMIT_AS; 3.12 checks for stack space
 * before it specializes).  Fibers start on small root chunks and cross into
 * new chunks far more often than one thread does, so on 3.11 a few chunks
 * are held in reserve for when memory runs out: the push then succeeds, and
 * MemoryError is raised asynchronously in the thread, which the new frame
 * raises at its first instruction (RESUME checks the eval breaker), where
 * the error path is clean.  Freed chunks refill the reserve first. */
#if PY_VERSION_HEX < 0x030C0000
#  define RESERVE_MAX 8
#else
#  define RESERVE_MAX 0
#endif
static void *reserve[RESERVE_MAX + 1];
static int reserved;

/* Pop from the cache or the reserve, NULL if empty. */
static void *pop(void **stack, int *n)
{
    void *p = NULL;
    pyc_lock_acquire(&lock);
    if (*n > 0)
        p = stack[--*n];
    pyc_lock_release(&lock);
    return p;
}

/* Push onto one: 0, or -1 if it holds `max` already.  The count is
 * stored atomically: heap_count is read without the lock. */
static int push(void **stack, int *n, int max, void *p)
{
    int rc = -1;
    pyc_lock_acquire(&lock);
    if (*n < max) {
        stack[*n] = p;
        PYC_STORE(n, *n + 1);
        rc = 0;
    }
    pyc_lock_release(&lock);
    return rc;
}

/* When the arena allocator (mmap) cannot give a data-stack chunk, malloc
 * may still have one: memory that dropped objects and fibers gave back to
 * the heap stays in the process (it does not lower the address space an
 * RLIMIT_AS counts), so after a MemoryError, dropping fibers makes room
 * only for malloc.  Such chunks are listed here, to be freed with free()
 * (never cached): a rare path, taken only when memory has run out. */
#define HEAP_MAX 4096
static void *heap_chunks[HEAP_MAX];
static int heap_count;

static void *heap_chunk_alloc(size_t size)
{
    if (PYC_LOAD(&heap_count) == HEAP_MAX)
        return NULL;
    void *p = PyMem_RawMalloc(size);
    if (p && push(heap_chunks, &heap_count, HEAP_MAX, p) < 0) {
        PyMem_RawFree(p);                /* another thread filled the list */
        p = NULL;
    }
    return p;
}

/* 1 if `ptr` was one of heap_chunk_alloc's (now freed), else 0. */
static int heap_chunk_free(void *ptr)
{
    int found = 0;
    pyc_lock_acquire(&lock);
    for (int i = heap_count - 1; i >= 0; i--) {
        if (heap_chunks[i] == ptr) {
            heap_chunks[i] = heap_chunks[heap_count - 1];
            PYC_STORE(&heap_count, heap_count - 1);
            found = 1;
            break;
        }
    }
    pyc_lock_release(&lock);
    if (found)
        PyMem_RawFree(ptr);
    return found;
}

/* obmalloc's arena size on 64-bit builds (ARENA_BITS 20, 3.11-3.14). */
#define OBMALLOC_ARENA_SIZE (1024 * 1024)

/* Is `size` one that only the data stack asks for?  CPython's push_chunk
 * asks for DATA_STACK_CHUNK_SIZE doubled until the frame fits; obmalloc asks
 * for whole arenas.  Only a frame of over 100,000 slots would need a chunk
 * of exactly an arena's size. */
static int is_data_stack_size(size_t size)
{
    return size >= CHUNK_SIZE && size != OBMALLOC_ARENA_SIZE && (size & (size - 1)) == 0;
}

static void *cached_alloc(void *ctx, size_t size)
{
    (void)ctx;
    void *p = size == CHUNK_SIZE ? pop(cache, &cached) : NULL;
    if (p)
        return p;
    p = underlying.alloc(underlying.ctx, size);
    if (!p && is_data_stack_size(size))
        p = heap_chunk_alloc(size);
    if (!p && RESERVE_MAX > 0 && size == CHUNK_SIZE && (p = pop(reserve, &reserved)) != NULL) {
        PyThreadState_SetAsyncExc((unsigned long)PyThread_get_thread_ident(), PyExc_MemoryError);
        return p;
    }
    /* CPython 3.11-3.14 do not set an exception when a data-stack chunk
     * cannot be had (push_chunk returns NULL silently; several callers in
     * the eval loop then fail with "SystemError: error return without
     * exception set").  The chunk is always requested by a thread pushing
     * a frame, with its thread state attached: say what happened.  An
     * arena request failing is not an error (obmalloc falls back to
     * malloc), so it is left alone. */
    if (!p && is_data_stack_size(size))
        PyErr_NoMemory();
    return p;
}

static void cached_free(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    if (PYC_LOAD(&heap_count) > 0 && is_data_stack_size(size) && heap_chunk_free(ptr))
        return;
    if (size == CHUNK_SIZE && ((RESERVE_MAX > 0 && push(reserve, &reserved, RESERVE_MAX, ptr) == 0)
                               || push(cache, &cached, CACHE_MAX, ptr) == 0))
        return;
    underlying.free(underlying.ctx, ptr, size);
}

void pyc_chunk_cache_install(void)
{
    /* Once, even when two threads first use pycoro at the same time (one
     * of them may go on before the cache is in: it is only a cache).
     * Threads that allocate while the three words of CPython's allocator
     * are replaced may see a mix of old and new: both pairs of functions
     * serve the same chunks and take the same (NULL) context. */
    if (__atomic_exchange_n(&installed, 1, __ATOMIC_ACQ_REL))
        return;
    PyObject_GetArenaAllocator(&underlying);
    while (reserved < RESERVE_MAX) {
        void *p = underlying.alloc(underlying.ctx, CHUNK_SIZE);
        if (!p)
            break;              /* refilled later, by freed chunks */
        reserve[reserved++] = p;
    }
    PyObjectArenaAllocator ours = { NULL, cached_alloc, cached_free };
    PyObject_SetArenaAllocator(&ours);
}
