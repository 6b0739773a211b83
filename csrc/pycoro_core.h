/*
 * pycoro core: stack-copying fibers in pure C (libc only, no Python.h).
 *
 * Design: symmetric, greenlet-style.  Every fiber of a thread runs on that
 * thread's own C stack.  A fiber owns the address range [stack_start,
 * stack_stop) of that stack; when another fiber needs part of the range, the
 * bytes are first copied to the owner's heap buffer ("saved"), and copied back
 * when the owner is resumed.  Copying is lazy: a switch saves only the bytes
 * that the incoming fiber is about to overwrite.
 *
 *   high addresses
 *   +---------------------------+  main.stack_stop = UINTPTR_MAX (never reached)
 *   | main fiber's frames       |
 *   |   ...                     |
 *   +---------------------------+  A.stack_stop  (its starter's sp before the switch)
 *   | A's frames                |  A suspended: [A.stack_start, A.stack_stop)
 *   +---------------------------+  A.stack_start = B.stack_stop
 *   | B's frames (running)      |
 *   +---------------------------+  sp
 *   low addresses
 *
 * Why symmetric and not asymmetric (libaco's "every switch goes through the
 * main stack"): CPython switches are fiber-to-fiber (a scheduler hub resumes
 * a task directly), and a round trip main -> fiber -> main must cost two
 * copies of a few hundred bytes, not four.  Sharing the thread's stack also
 * means a fiber's C code sees an ordinary, guard-paged thread stack.
 *
 * Invariants (a broken one aborts with a message, it is never "recovered"):
 *  I1  Following `prev` from the running fiber visits exactly the suspended
 *      fibers that still have unsaved bytes on the stack, ordered by strictly
 *      increasing stack_stop, and ends at the main fiber (prev == NULL).
 *  I2  A suspended fiber's bytes [stack_start, stack_start + saved) are in
 *      its heap copy; [stack_start + saved, stack_stop) are still on the stack
 *      (I1 guarantees nobody overwrote them).
 *  I3  The running fiber has saved == 0: its stack is live.
 *  I4  A new fiber gets stack_stop at its first switch: normally the top of
 *      the register block of the fiber that starts it (the starter saves
 *      just that block, its registers going straight to its buffer, as
 *      greenlet's starter saves its switch frames), or the thread's base
 *      (where its first fiber started) when that is more than
 *      PC_NEST_LIMIT below it, so that a long chain of fibers each starting
 *      the next cannot overflow the C stack.
 *
 * Registers: the arch switch (arch/switch_*.S) reserves a block for the
 * callee-saved registers on the outgoing stack, at `sp` (layout: pc_regs_*
 * below), and stores them where pc__switch_save says: into that block, or
 * straight into the front of the fiber's save buffer when its slice is
 * saved there at once.  Either way they are saved and restored with the
 * stack bytes.  The .S files are mechanism only; every decision, the fast
 * paths included, is in pycoro_core.c, the same C on every architecture.
 *
 * Floating-point environment (x86-64: MXCSR's control bits and the x87
 * control word; ARM64: FPCR): each fiber has its own, like the registers:
 * a switch saves the leaving fiber's and installs the entering fiber's (a
 * new fiber starts with its starter's).  Fibers given
 * PC_FIBER_SHARE_FPENV instead share one per thread, as code that shares a
 * thread does: a switch between two of them leaves the environment alone.
 * That is an opt-out for C code that never changes rounding modes: reading
 * MXCSR is microcoded (about 4.5 ns alone on the AMD EPYC machines we
 * measure on, 1.5-2 ns of an ~8 ns raw switch); Windows fibers make the
 * same trade with FIBER_FLAG_FLOAT_SWITCH.  The CPython binding keeps the default, as
 * greenlet keeps the environment per greenlet.
 */
#ifndef PYCORO_CORE_H
#define PYCORO_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* How far (bytes) nested fiber starts may descend below the thread base. */
#define PC_NEST_LIMIT (256 * 1024)

/* pc_fiber.flags */
#define PC_FIBER_SHARE_FPENV 1u  /* share the thread's floating-point environment */

/* Return codes of pc_switch. */
#define PC_OK 0
#define PC_ENOMEM (-1)   /* a save buffer could not be allocated; nothing changed */
#define PC_EINVAL (-2)   /* target dead, running, or of another thread */

typedef enum pc_state {
    PC_NEW = 0,        /* created, never run */
    PC_RUNNING = 1,    /* the thread's current fiber */
    PC_SUSPENDED = 2,  /* switched away from, can be resumed */
    PC_DYING = 3,      /* its entry returned; making its last switch */
    PC_DEAD = 4        /* finished; its stack is gone */
} pc_state;

typedef struct pc_allocator {
    /* realloc semantics (ptr may be NULL); returns NULL on failure */
    void *(*realloc_fn)(void *ctx, void *ptr, size_t size);
    void (*free_fn)(void *ctx, void *ptr);
    void *ctx;
} pc_allocator;

typedef struct pc_fiber pc_fiber;
typedef struct pc_thread pc_thread;

/* A fiber's body.  It returns the fiber to switch to when it is finished
 * (a live fiber of the same thread); returning NULL or a fiber that cannot
 * be resumed aborts loudly. */
typedef pc_fiber *(*pc_entry_fn)(pc_fiber *self, void *arg);

struct pc_fiber {
    char *stack_start;   /* lowest byte of our slice while suspended */
    char *stack_stop;    /* one past the highest byte of our slice */
    char *copy;          /* heap copy of [stack_start, stack_start + saved) */
    size_t saved;        /* bytes in copy */
    size_t cap;          /* allocated size of copy (kept for the next save) */
    pc_fiber *prev;      /* next fiber up the stack with unsaved bytes (I1) */
    void *sp;            /* saved stack pointer: points at the pc_regs block */
    pc_thread *thread;
    pc_entry_fn entry;
    void *arg;
    pc_state state;
    unsigned flags;      /* PC_FIBER_*: set with pc_fiber_set_flags */
    uint64_t fpenv;      /* its FP environment while not running (unless shared) */
};

struct pc_thread {
    pc_fiber *main;      /* the thread's original context */
    pc_fiber *current;   /* running fiber */
    pc_fiber *target;    /* during a switch: the fiber being resumed */
    char *base;          /* where the thread's first fiber starts (I4) */
    uint64_t fpenv;      /* the shared FP environment (PC_FIBER_SHARE_FPENV)
                            while another fiber runs; read at pc_thread_init */
    pc_allocator alloc;
};

/* Register blocks pushed by the arch switch, lowest address first. */
typedef struct pc_regs_x86_64 {
    uint64_t pad;        /* keeps the block and the calls 16-byte aligned */
    uint64_t r15, r14, r13, r12, rbx, rbp;
    uint64_t ret;        /* return address into pc_switch's caller */
} pc_regs_x86_64;

typedef struct pc_regs_arm64 {
    uint64_t d8, d9, d10, d11, d12, d13, d14, d15;
    uint64_t x19, x20, x21, x22, x23, x24, x25, x26, x27, x28;
    uint64_t fp, lr;
} pc_regs_arm64;

/* `main` (caller-owned storage) becomes the running context of the caller.
 * `alloc` may be NULL for libc realloc/free. */
void pc_thread_init(pc_thread *t, pc_fiber *main, const pc_allocator *alloc);
/* Release the main fiber's buffer. */
void pc_thread_fini(pc_thread *t);

/* Prepare a new fiber; it runs `entry(self, arg)` at its first switch. */
void pc_fiber_init(pc_fiber *f, pc_thread *t, pc_entry_fn entry, void *arg);
/* PC_FIBER_* flags of a fiber (the main fiber included); takes effect at
 * its next switch. */
static inline void pc_fiber_set_flags(pc_fiber *f, unsigned flags) { f->flags = flags; }
/* Free a fiber's heap copy and unlink it from the stack chain.  A suspended
 * fiber's frames are abandoned without unwinding (the caller's business). */
void pc_fiber_release(pc_fiber *f);

/* The arch switch (arch/switch_*.S): 0 when resumed, -1 (PC_ENOMEM) if
 * nothing could be switched.  Use pc_switch(). */
__attribute__((visibility("hidden"))) int pc__switch_asm(pc_thread *t);

/* Called by a fiber's entry as the last thing before it returns `target`
 * (the running fiber is the one finishing): do every save the finished
 * fiber's final switch to `target` needs, so that switch allocates nothing.
 * PC_OK, or PC_ENOMEM with nothing changed (the entry can still free
 * memory or pick another target).  fiber_main (pycoro_core.c) calls it again (a no-op
 * then) and aborts on failure if the entry did not. */
int pc_fiber_prepare_exit(pc_fiber *target);

/* Switch from the thread's running fiber to `target`.  Returns PC_OK when
 * some fiber later switches back to the caller, or an error code at once
 * (and nothing changed).  Inline: its caller's frame is the one saved. */
static inline int pc_switch(pc_fiber *target)
{
    pc_thread *t = target->thread;
    if (target == t->current)
        return PC_OK;
    if (target->state != PC_NEW && target->state != PC_SUSPENDED)
        return PC_EINVAL;
    t->target = target;
    return pc__switch_asm(t);          /* 0 or -1: PC_OK or PC_ENOMEM */
}

/* Bytes of the fiber's stack currently held in its heap copy. */
static inline size_t pc_saved_bytes(const pc_fiber *f) { return f->saved; }

#ifdef __cplusplus
}
#endif
#endif /* PYCORO_CORE_H */
