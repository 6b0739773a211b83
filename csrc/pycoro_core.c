/* pycoro core: the save/restore bookkeeping around the arch switch.
 * See pycoro_core.h for the stack diagram and the invariants I1-I4. */
#include "pycoro_core.h"
#include "arch/switch_abi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define PC_ASAN 1
#  endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#  define PC_ASAN 1
#endif

#ifdef PC_ASAN
#  include <sanitizer/asan_interface.h>
#  include <sanitizer/common_interface_defs.h>
/* The copies read and write other frames' bytes, redzones included. */
#  define PC_NO_ASAN __attribute__((no_sanitize_address))
#else
#  define PC_NO_ASAN
#endif

/* Called from the arch switch only: `used` keeps LTO from dropping them. */
#define PC_HIDDEN __attribute__((visibility("hidden"), used))

/* The offset tables at the top of the .S files, checked against the C view.
 * Every member of both structs is a uint64_t, so a size of 8 bytes per
 * member proves there is no padding: each member lies at 8 times its place
 * in the declaration, which lists them in the tables' order.  A register
 * by name at each end checks that reading. */
_Static_assert(sizeof(pc_regs_x86_64) == PC_X86_64_FRAME_SIZE, "x86-64 frame size");
_Static_assert(sizeof(pc_regs_x86_64) == 8 * 8, "x86-64: padding, r15-rbp, ret");
_Static_assert(offsetof(pc_regs_x86_64, r15) == 0x08, "x86-64 r15");
_Static_assert(offsetof(pc_regs_x86_64, ret) == 0x38, "x86-64 return address");
_Static_assert(sizeof(pc_regs_arm64) == PC_ARM64_FRAME_SIZE, "arm64 frame size");
_Static_assert(sizeof(pc_regs_arm64) == 20 * 8, "arm64: d8-d15, x19-x28, fp, lr");
_Static_assert(sizeof(pc_regs_arm64) % 16 == 0, "arm64 sp stays 16-byte aligned");
_Static_assert(offsetof(pc_regs_arm64, x19) == 0x40, "arm64 x19");
_Static_assert(offsetof(pc_regs_arm64, lr) == 0x98, "arm64 lr");
_Static_assert(PC_ENOMEM == -1, "pc__switch_asm returns -1 for PC_ENOMEM");

/* The register block of this architecture (arch/switch_*.S). */
#if defined(__x86_64__)
#  define PC_REGS PC_X86_64_FRAME_SIZE
#else
#  define PC_REGS PC_ARM64_FRAME_SIZE
#endif

/* What pc__switch_save tells the arch switch (returned in two registers:
 * rax/rdx on x86-64, x0/x1 on arm64): where to store the leaving fiber's
 * registers (NULL: the switch failed, nothing changed), and the stack
 * pointer to go on at. */
typedef struct pc_resume {
    void *regs_to;
    void *sp;
} pc_resume;

PC_HIDDEN pc_resume pc__switch_save(pc_thread *t, char *block);
PC_HIDDEN void *pc__switch_restore(pc_thread *t);
static __attribute__((noreturn, noinline)) void fiber_main(pc_thread *t);

static __attribute__((noreturn)) void pc_fatal(const char *msg)
{
    fprintf(stderr, "pycoro: fatal: %s\n", msg);
    fflush(stderr);
    abort();
}

static void *libc_realloc(void *ctx, void *p, size_t n) { (void)ctx; return realloc(p, n); }
static void libc_free(void *ctx, void *p) { (void)ctx; free(p); }
static const pc_allocator libc_allocator = { libc_realloc, libc_free, NULL };

/* The floating-point environment of a fiber (see the header).
 * x86-64: MXCSR in the low 32 bits, the x87 control word above.  Only
 * MXCSR's control bits (0xffc0: rounding, exception masks, FTZ, DAZ) are
 * compared and switched; its sticky exception flags stay with the thread,
 * as FPSR does on ARM64. */
#if defined(__x86_64__)
#  define PC_MXCSR_CONTROL 0xffc0u
/* the bits a switch compares: MXCSR's control bits and the x87 word */
#  define PC_FPENV_MASK (PC_MXCSR_CONTROL | UINT64_C(0xffff) << 32)
static inline uint64_t fpenv_read(void)
{
    uint32_t mxcsr;
    uint16_t cw;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    return mxcsr | (uint64_t)cw << 32;
}
/* Rare (a fiber changed its environment): out of line. */
static __attribute__((noinline)) void fpenv_write(uint64_t now, uint64_t want)
{
    if ((uint32_t)(now ^ want) & PC_MXCSR_CONTROL) {
        uint32_t mxcsr = ((uint32_t)want & PC_MXCSR_CONTROL) | ((uint32_t)now & ~PC_MXCSR_CONTROL);
        __asm__ volatile("ldmxcsr %0" : : "m"(mxcsr));
    }
    if ((uint16_t)(now >> 32) != (uint16_t)(want >> 32)) {
        uint16_t cw = (uint16_t)(want >> 32);
        __asm__ volatile("fldcw %0" : : "m"(cw));
    }
}
#elif defined(__aarch64__) || defined(__arm64__)
#  define PC_FPENV_MASK (~UINT64_C(0))
static inline uint64_t fpenv_read(void)
{
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    return fpcr;
}
static __attribute__((noinline)) void fpenv_write(uint64_t now, uint64_t want)
{
    (void)now;
    __asm__ volatile("msr fpcr, %0" : : "r"(want));
}
#else
#  error "pycoro: no floating-point environment access for this target"
#endif

/* The last step of a switch that nothing can stop any more: keep the FP
 * environment of what we leave (the fiber's own, or the shared one) and
 * install the one of what we enter. */
static inline __attribute__((always_inline)) void fpenv_switch(pc_thread *t, pc_fiber *cur,
                                                               pc_fiber *tgt, int fresh)
{
    if (cur->flags & tgt->flags & PC_FIBER_SHARE_FPENV)
        return;                        /* both share the thread's: untouched */
    uint64_t now = fpenv_read();
    *(cur->flags & PC_FIBER_SHARE_FPENV ? &t->fpenv : &cur->fpenv) = now;
    uint64_t *want = tgt->flags & PC_FIBER_SHARE_FPENV ? &t->fpenv : &tgt->fpenv;
    if (fresh && want == &tgt->fpenv)
        *want = now;                   /* a new fiber starts with its starter's */
    else if (__builtin_expect((now ^ *want) & PC_FPENV_MASK, 0))
        fpenv_write(now, *want);
}

void pc_thread_init(pc_thread *t, pc_fiber *main, const pc_allocator *alloc)
{
    memset(t, 0, sizeof *t);
    memset(main, 0, sizeof *main);
    t->alloc = alloc ? *alloc : libc_allocator;
    t->fpenv = fpenv_read();
    main->stack_stop = (char *)UINTPTR_MAX;
    main->thread = t;
    main->state = PC_RUNNING;
    t->main = main;
    t->current = main;
}

static void free_copy(pc_fiber *f)
{
    if (f->copy)
        f->thread->alloc.free_fn(f->thread->alloc.ctx, f->copy);
    f->copy = NULL;
    f->saved = f->cap = 0;
}

void pc_thread_fini(pc_thread *t) { free_copy(t->main); }

void pc_fiber_init(pc_fiber *f, pc_thread *t, pc_entry_fn entry, void *arg)
{
    memset(f, 0, sizeof *f);
    f->thread = t;
    f->entry = entry;
    f->arg = arg;
    f->state = PC_NEW;
}

void pc_fiber_release(pc_fiber *f)
{
    pc_thread *t = f->thread;
    if (f == t->current || f == t->main)
        pc_fatal("pc_fiber_release of the running or the main fiber");
    if (f->state == PC_SUSPENDED) {
        /* Keep I1: whoever points at us now points past us.  Our bytes
         * still on the stack become garbage nobody reads. */
        for (pc_fiber *p = t->current; p; p = p->prev) {
            if (p->prev == f) {
                p->prev = f->prev;
                break;
            }
        }
    }
    free_copy(f);
    f->prev = NULL;
    f->state = PC_DEAD;
}

/* Copy stack bytes without ASan looking at the redzones of frames that are
 * not ours.  Plain memcpy otherwise: it is the fastest copy libc has. */
static PC_NO_ASAN void copy_bytes(char *dst, const char *src, size_t n)
{
#ifdef PC_ASAN
    for (size_t i = 0; i < n; i++)
        ((volatile char *)dst)[i] = src[i];
#else
    memcpy(dst, src, n);
#endif
}

/* Copy in 16-byte moves, lowest address first.  Two uses:
 *  - saving a slice of up to PC_SMALL_COPY bytes (a C fiber's is often
 *    100-200 bytes) inline: no call and no size dispatch, and the fast
 *    paths stay frameless (a Python fiber's 500-600 bytes go to memcpy,
 *    which copies them in fewer instructions: its stores are not read back
 *    at once, unlike a restore's);
 *  - restoring: the resumed fiber reads its slice bottom-up right away (the
 *    switch loads its registers, then returns through its frames), and
 *    those loads are served best from stores made in that order, early.
 *    memcpy stores the lowest bytes last (glibc's copy of a few hundred
 *    bytes writes its first vectors after its loop): restoring a Python
 *    fiber's 576 bytes that way measured 100 ns per round trip, this way
 *    84 (callgrind counts barely differ: it is store-to-load forwarding).
 * One 16-byte move an iteration: the wider loops compilers make of this
 * (with their remainder) measured more instructions per switch for the
 * slices copied here, not fewer.  n is a multiple of 16 (the callers
 * check).  Never used under ASan. */
#define PC_SMALL_COPY 256
#define PC_RESTORE_UP16 1024
static inline __attribute__((always_inline)) void copy16(char *dst, const char *src)
{
    char a[16];
    __builtin_memcpy(a, src, 16);
    __builtin_memcpy(dst, a, 16);
}
static inline __attribute__((always_inline)) void copy_up16(char *dst, const char *src, size_t n)
{
    for (size_t i = 0; i < n; i += 16)
        copy16(dst + i, src + i);
}

/* Copy f's bytes up to `stop` to its heap buffer, growing it: the part of
 * save_up_to() that does work.  `must`: the caller cannot fail (a finished
 * fiber's last switch). */
static __attribute__((noinline)) PC_NO_ASAN int save_more(pc_fiber *f, size_t need, int must)
{
    if (need > f->cap) {
        pc_allocator *a = &f->thread->alloc;
        size_t cap = need < 256 ? 256 : need;
        /* A finished fiber's last switch never allocates: everything it
         * saves was saved by pc_fiber_prepare_exit. */
        if (must)
            pc_fatal("a finished fiber's last switch needed memory it had not reserved");
        char *p = a->realloc_fn(a->ctx, f->copy, cap);
        if (!p)
            return -1;
        f->copy = p;
        f->cap = cap;
    }
    copy_bytes(f->copy + f->saved, f->stack_start + f->saved, need - f->saved);
    f->saved = need;
    return 0;
}

/* Make f's heap copy cover [stack_start, stop). */
static inline int save_up_to(pc_fiber *f, char *stop, int must)
{
    intptr_t need = stop - f->stack_start;   /* signed: stop may be below */
    if (need <= (intptr_t)f->saved)
        return 0;
    return save_more(f, (size_t)need, must);
}

/* The running fiber's own bytes up to `stop`, its whole register block
 * included: the arch switch stores the registers straight into the front
 * of the buffer (they are not on the stack yet: pc__switch_save runs
 * first), so only the bytes above the block are copied here. */
static int save_own(pc_fiber *cur, char *stop)
{
    size_t need = (size_t)(stop - cur->stack_start);
    cur->saved = PC_REGS;                     /* the block: the asm's to store */
    return save_more(cur, need < PC_REGS ? PC_REGS : need, 0);
}

#ifdef PC_ASAN
/* ASan and stack copying.  ASan keeps a shadow byte per 8 stack bytes; an
 * instrumented function poisons its frame's redzones on entry and clears
 * them on return.  A fiber that switches away never returns from those
 * frames, and its bytes (not their shadow) are copied to the heap, so the
 * shadow left on the stack describes frames that are no longer there: the
 * next fiber to run over that range would be reported for touching its own
 * live bytes (seen: fiber_entry reading its locals, "CHECK failed:
 * kCurrentStackFrameMagic").  So at every switch the range that changes
 * owner is unpoisoned: from the lower of the two stack pointers up to the
 * top of what the target restores (a new fiber: its stack_stop).  Frames
 * below the new sp are then clean, as ASan assumes; a resumed fiber's
 * restored frames run without their redzones until they return (missed
 * detections there, never false ones); every frame called afterwards is
 * poisoned as usual, and heap/global checks are untouched.
 *
 * __sanitizer_start_switch_fiber/__sanitizer_finish_switch_fiber are not
 * needed: they tell ASan that the thread moves to *another* stack, and
 * every fiber here runs on the thread's own stack, within the bounds ASan
 * already knows.  ASan's fake stacks (detect_stack_use_after_return) must
 * stay off: their frames are freed by comparing real stack addresses, which
 * stack copying reuses (the sanitizer lane runs with it off, the default). */
static void asan_forget_stale_frames(char *sp, pc_fiber *tgt, int fresh)
{
    char *lo, *hi;
    if (fresh) {
        lo = sp;
        hi = tgt->stack_stop;           /* the new fiber starts here */
    } else {
        lo = (char *)tgt->sp < sp ? (char *)tgt->sp : sp;
        hi = tgt->stack_start + tgt->saved;
    }
    if (hi > lo)
        __asan_unpoison_memory_region(lo, (size_t)(hi - lo));
}
#endif

/* I4: where a fiber started from `sp` begins (the top of the starter's
 * register block), unless that is too deep below the thread's base. */
static char *new_fiber_stop(pc_thread *t, char *sp)
{
    char *stop = (char *)((uintptr_t)sp & ~(uintptr_t)15);
    if (t->base > stop && (size_t)(t->base - stop) > PC_NEST_LIMIT)
        stop = (char *)((uintptr_t)t->base & ~(uintptr_t)15);
    return stop;
}

/* Called by the arch switch on the outgoing stack, with room for the
 * registers reserved at `block` (not stored yet).  Saves what the target
 * will overwrite and updates the bookkeeping.  Nothing after this point can
 * fail. */
static __attribute__((noinline)) pc_resume switch_save_general(pc_thread *t, char *block)
{
    pc_fiber *cur = t->current, *tgt = t->target;
    pc_resume r = { NULL, NULL };
    int dying = cur->state == PC_DYING;
    int fresh = tgt->state == PC_NEW;
    char *stop;

    if (__builtin_expect(fresh, 0)) {
        /* The thread's first switch always starts a fiber: it sets the
         * base, where that fiber starts, so a chain restarted at the base
         * starts at the same place (the binding relies on it to give such a
         * fiber the C recursion count of the first one).  A stop fixed by
         * pc_fiber_prepare_exit is kept. */
        char *above_block = block + PC_REGS;
        if (!t->base)
            t->base = above_block;
        /* Just above our register block (I4): the new fiber's first frames
         * take the block's place, our registers go to our buffer. */
        stop = tgt->stack_stop ? tgt->stack_stop : new_fiber_stop(t, above_block);
        tgt->stack_stop = stop;
    } else {
        stop = tgt->stack_stop;
    }

    pc_fiber *owner = cur;
    if (__builtin_expect(dying, 0)) {
        owner = cur->prev;       /* a finished fiber's bytes are garbage */
    } else {
        cur->sp = block;
        cur->stack_start = block;
        /* Our own bytes first (then the loop below finds them saved). */
        if (stop > block && save_own(cur, cur->stack_stop < stop ? cur->stack_stop : stop))
            goto fail;
    }
    /* Save what lies below `stop`: whole slices of the fibers entirely
     * below it, then the part of the one that straddles it. */
    while (owner->stack_stop < stop) {
        if (save_up_to(owner, owner->stack_stop, dying))
            goto fail;
        owner = owner->prev;
    }
    if (owner != tgt && save_up_to(owner, stop, dying))
        goto fail;

    /* I1 for the target: skip everything now fully saved. */
    while (owner && owner->stack_stop <= stop)
        owner = owner->prev;
    tgt->prev = owner;

    r.regs_to = block;
    if (__builtin_expect(dying, 0)) {
        cur->state = PC_DEAD;
        cur->prev = NULL;
        cur->stack_start = NULL;
    } else {
        cur->state = PC_SUSPENDED;
        if (cur->saved)
            r.regs_to = cur->copy;   /* the block is among the saved bytes */
    }
    t->current = tgt;
    tgt->state = PC_RUNNING;
#ifdef PC_ASAN
    asan_forget_stale_frames(block, tgt, fresh);
#endif
    r.sp = fresh ? stop : tgt->sp;   /* a new fiber: pc__switch_restore starts it */
    fpenv_switch(t, cur, tgt, fresh);
    return r;

fail:
    /* I3: the running fiber's stack goes on changing; drop its copy. */
    cur->saved = 0;
    cur->stack_start = NULL;
    if (fresh)
        tgt->stack_stop = NULL;
    return r;
}

/* The end of a fast switch (below): cur's bytes are where they must be,
 * its registers go to `regs_to`. */
static inline __attribute__((always_inline)) pc_resume switch_fast_finish(pc_thread *t, pc_fiber *cur,
                                                                          pc_fiber *tgt, char *block,
                                                                          void *regs_to)
{
    cur->sp = block;
    cur->stack_start = block;
    cur->state = PC_SUSPENDED;
    t->current = tgt;
    tgt->state = PC_RUNNING;
    fpenv_switch(t, cur, tgt, 0);
    pc_resume r = { regs_to, tgt->sp };
    return r;
}

/* The up switch (below) for a slice too large to copy inline. */
static __attribute__((noinline)) pc_resume switch_up_memcpy(pc_thread *t, char *block, size_t need)
{
    pc_fiber *cur = t->current;
    memcpy(cur->copy + PC_REGS, block + PC_REGS, need - PC_REGS);
    cur->saved = need;
    return switch_fast_finish(t, cur, t->target, block, cur->copy);
}

/* The two common switches without the general path's loops (on every
 * architecture: the arch switch only stores registers, calls this, and
 * loads registers):
 *  down: resume a suspended fiber whose slice lies below the top of the
 *        current block (a fiber resumed by its starter, a hub resuming a
 *        task): nothing to save, our registers go into our block, or into
 *        our buffer when the target's slice reaches into the block (resumed
 *        from where it was started, I4);
 *  up:   resume the next fiber up the stack (a fiber switching back to its
 *        starter) when our slice fits the buffer we already have: save all
 *        of our slice, nothing else (no fiber in between has unsaved bytes,
 *        I1), and the target's place in the chain does not change.  Our
 *        registers go straight into the front of the buffer and the bytes
 *        above the block are copied after them: the registers never make a
 *        round trip through the stack.  (Our slice always holds the whole
 *        block: the return address above it is ours.)
 * Everything else takes the general path.  Frameless: the slow parts are
 * reached by tail calls. */
pc_resume pc__switch_save(pc_thread *t, char *block)
{
    pc_fiber *cur = t->current, *tgt = t->target;
    char *stop = tgt->stack_stop;
#ifdef PC_ASAN
    return switch_save_general(t, block);
#endif
    if (__builtin_expect(cur->state != PC_RUNNING || tgt->state != PC_SUSPENDED, 0))
        return switch_save_general(t, block);
    if (stop <= block + PC_REGS && cur->stack_stop >= stop) {
        /* Our slice reaches above the target's: at most our register block
         * is in its way (a fiber resumed from where it was started).  The
         * registers then go to the front of our buffer, nothing is copied. */
        void *regs_to = block;
        if (stop > block) {
            if (__builtin_expect(cur->cap < PC_REGS, 0))
                return switch_save_general(t, block);
            cur->saved = PC_REGS;
            regs_to = cur->copy;
        }
        /* I1: the chain from the target skips fibers that end below its
         * stop (none has unsaved bytes: they are below sp). */
        pc_fiber *owner = cur;
        while (owner && owner->stack_stop <= stop)
            owner = owner->prev;
        tgt->prev = owner;
        return switch_fast_finish(t, cur, tgt, block, regs_to);
    }
    size_t need = (size_t)(cur->stack_stop - block);
    if (cur->prev != tgt || need > cur->cap)
        return switch_save_general(t, block);
    if (need > PC_SMALL_COPY || (need & 15))
        return switch_up_memcpy(t, block, need);
    copy_up16(cur->copy + PC_REGS, block + PC_REGS, need - PC_REGS);
    cur->saved = need;
    return switch_fast_finish(t, cur, tgt, block, cur->copy);
}

/* Restoring more than PC_RESTORE_UP16 bytes (a fiber suspended in C code
 * that re-entered the interpreter, a deep recursion): the upper part first,
 * with memcpy (fast for kilobytes, and read only later), then the bottom
 * bytes in order.  Out of line: a frame in pc__switch_restore itself (for
 * the memcpy call) measured 8 ns more per Python round trip. */
#define PC_RESTORE_BOTTOM 512
static __attribute__((noinline, cold)) PC_NO_ASAN void *restore_large(pc_fiber *f, size_t n)
{
    char *block = f->sp;
#ifndef PC_ASAN
    if ((n & 15) == 0) {
        memcpy(block + PC_RESTORE_BOTTOM, f->copy + PC_RESTORE_BOTTOM, n - PC_RESTORE_BOTTOM);
        copy_up16(block + PC_REGS, f->copy + PC_REGS, PC_RESTORE_BOTTOM - PC_REGS);
        return f->copy;
    }
#endif
    copy_bytes(block + PC_REGS, f->copy + PC_REGS, n - PC_REGS);
    return f->copy;
}

/* A resumed fiber whose saved bytes end inside its register block (a
 * suspended fiber's bytes are saved lazily, only as far as the fiber that
 * overwrote them needed): all back onto the stack, registers from there. */
static __attribute__((noinline, cold)) PC_NO_ASAN void *restore_partial(pc_fiber *f, size_t n)
{
    copy_bytes(f->sp, f->copy, n);
    return f->sp;
}

/* Called by the arch switch with sp already at the target's block (or a
 * new fiber's stack_stop): put the target's saved bytes back above it, and
 * tell where its registers are.  When its whole block is among the saved
 * bytes, they are read from the buffer and only the bytes above the block
 * are copied back; else they are on the stack.  A new fiber (no sp yet)
 * starts here.  Frameless (see restore_large). */
PC_NO_ASAN void *pc__switch_restore(pc_thread *t)
{
    pc_fiber *f = t->current;
    size_t n = f->saved;
    if (__builtin_expect(n >= PC_REGS, 1)) {
        f->saved = 0;
#ifndef PC_ASAN
        if (__builtin_expect(n <= PC_RESTORE_UP16 && (n & 15) == 0, 1)) {
            copy_up16((char *)f->sp + PC_REGS, f->copy + PC_REGS, n - PC_REGS);
            return f->copy;
        }
#endif
        return restore_large(f, n);
    }
    if (__builtin_expect(!f->sp, 0))
        fiber_main(t);
    if (n) {
        f->saved = 0;
        return restore_partial(f, n);
    }
    return f->sp;
}

int pc_fiber_prepare_exit(pc_fiber *tgt)
{
    pc_thread *t = tgt->thread;
    pc_fiber *cur = t->current;
    int fresh = tgt->state == PC_NEW;
    char here;
    if (fresh && !tgt->stack_stop)
        tgt->stack_stop = new_fiber_stop(t, &here);   /* below the final switch's sp */
    char *stop = tgt->stack_stop;
    /* What the final switch's save loop will find to do (switch_save_general,
     * a finished fiber's bytes being garbage): do it now. */
    pc_fiber *owner = cur->prev;
    while (owner->stack_stop < stop) {
        if (save_up_to(owner, owner->stack_stop, 0))
            goto fail;
        owner = owner->prev;
    }
    if (owner != tgt && save_up_to(owner, stop, 0))
        goto fail;
    return PC_OK;
fail:
    if (fresh)
        tgt->stack_stop = NULL;
    return PC_ENOMEM;
}

/* First frame of every fiber (called by pc__switch_restore on the new
 * fiber's stack): it never returns. */
static void fiber_main(pc_thread *t)
{
    pc_fiber *self = t->current;
    pc_fiber *next = self->entry(self, self->arg);
    if (!next || next->thread != t || next == self
        || next->state == PC_DEAD || next->state == PC_RUNNING)
        pc_fatal("a finished fiber's entry returned no live fiber to switch to");
    if (pc_fiber_prepare_exit(next) != PC_OK)
        pc_fatal("out of memory in a finished fiber's last switch "
                 "(its entry did not call pc_fiber_prepare_exit)");
    self->state = PC_DYING;
    t->target = next;
    pc__switch_asm(t);
    pc_fatal("a finished fiber was resumed");
}

