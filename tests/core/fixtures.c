/* C fixtures that run on fiber stacks, driven from pytest through cffi.
 * Everything here talks to the pure C core only: no CPython in the loop. */
#include "pycoro_core.h"

#include <fenv.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Entry functions have the core's signature (pc_fiber *self, void *arg);
 * most fixtures use neither. */
#define UNUSED __attribute__((unused))

static pc_thread T;
static pc_fiber M;

/* How many registers fx_regs_roundtrip reports and what each must hold. */
#if defined(__x86_64__)
static int fx_nregs(void) { return 6; }                 /* rbx rbp r12-r15 */
static uint64_t fx_reg_expect(uint64_t seed, int i) { return seed + 1 + (uint64_t)i; }
#elif defined(__aarch64__)
/* x19-x28, fp, d8-d15 (regcheck_arm64.S) */
static int fx_nregs(void) { return 19; }
static uint64_t fx_reg_expect(uint64_t seed, int i) { return seed + 1 + (uint64_t)i; }
#else
int fx_nregs(void);
uint64_t fx_reg_expect(uint64_t seed, int i);
#endif

/* Allocation hook that can be told to fail: fail_at counts down to the
 * allocation that returns NULL (0 = never fail). */
static long alloc_calls, fail_at, live_blocks;
static void *hook_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    alloc_calls++;
    if (fail_at && alloc_calls == fail_at)
        return NULL;
    if (!p)
        live_blocks++;
    return realloc(p, n);
}
static void hook_free(void *ctx, void *p)
{
    (void)ctx;
    if (p)
        live_blocks--;
    free(p);
}

void fx_init(void)
{
    pc_allocator a = { hook_realloc, hook_free, NULL };
    alloc_calls = fail_at = 0;
    pc_thread_init(&T, &M, &a);
}
void fx_fini(void) { pc_thread_fini(&T); }
long fx_live_blocks(void) { return live_blocks; }
long fx_alloc_calls(void) { return alloc_calls; }
void fx_fail_alloc_at(long n) { alloc_calls = 0; fail_at = n; }
pc_thread *fx_thread(void) { return &T; }

/* ---- ping-pong: the fiber counts, main checks every value ---- */
static pc_fiber *main_f(void) { return T.main; }
static pc_fiber *pingpong_entry(pc_fiber *self UNUSED, void *arg)
{
    long *counter = arg;
    for (;;) {
        (*counter)++;
        if (*counter < 0)
            break;                 /* main asks us to finish */
        pc_switch(main_f());
    }
    return main_f();
}

/* Returns the number of round trips that saw the expected counter. */
long fx_pingpong(long n)
{
    pc_fiber f;
    long counter = 0, ok = 0;
    pc_fiber_init(&f, &T, pingpong_entry, &counter);
    for (long i = 1; i <= n; i++) {
        if (pc_switch(&f) != PC_OK)
            return -1;
        ok += counter == i;
    }
    counter = -100;                /* finish it */
    pc_switch(&f);
    ok += f.state == PC_DEAD;
    pc_fiber_release(&f);
    return ok;
}

/* ---- raw switch cost ----
 * Both sides switch from the same loop, bounce(), so a switch returns to the
 * call site the CPU's return predictor expects, as in the binding (every
 * Python-level switch goes through one call site).  `two_sites` instead
 * switches from two different functions (pingpong_entry and the timing
 * loop): then every switch's return is mispredicted, which is the shape of
 * the code and not of the switch (both are reported by the bench). */
static volatile int bounce_stop;
static __attribute__((noinline)) void bounce(pc_fiber *to, long n)
{
    for (long i = 0; i < n && !bounce_stop; i++)
        pc_switch(to);
}
static pc_fiber *bounce_entry(pc_fiber *self UNUSED, void *arg UNUSED)
{
    bounce(main_f(), LONG_MAX);
    return main_f();
}

static double elapsed_ns(const struct timespec *a, const struct timespec *b)
{
    return (b->tv_sec - a->tv_sec) * 1e9 + (b->tv_nsec - a->tv_nsec);
}

/* ns per single switch (a round trip is two); `flags` go on both fibers. */
double fx_switch_ns(long n, unsigned flags, int two_sites)
{
    pc_fiber f;
    long counter = 0;
    struct timespec a, b;
    double ns;
    pc_fiber_set_flags(T.main, flags);
    if (two_sites) {
        pc_fiber_init(&f, &T, pingpong_entry, &counter);
        pc_fiber_set_flags(&f, flags);
        pc_switch(&f);
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (long i = 0; i < n; i++)
            pc_switch(&f);
        clock_gettime(CLOCK_MONOTONIC, &b);
        counter = -100;
    } else {
        bounce_stop = 0;
        pc_fiber_init(&f, &T, bounce_entry, NULL);
        pc_fiber_set_flags(&f, flags);
        bounce(&f, 1);           /* started from bounce(): same stack depth */
        clock_gettime(CLOCK_MONOTONIC, &a);
        bounce(&f, n);
        clock_gettime(CLOCK_MONOTONIC, &b);
        bounce_stop = 1;
    }
    ns = elapsed_ns(&a, &b) / (2.0 * n);
    pc_switch(&f);               /* let it finish */
    if (f.state != PC_DEAD)
        ns = -1.0;
    pc_fiber_release(&f);
    pc_fiber_set_flags(T.main, 0);
    return ns;
}

/* ---- deep recursion inside a fiber, switching out at every level ---- */
struct deep { int depth; long checksum; };
static long recurse(struct deep *d, int level)
{
    volatile unsigned char frame[200];
    for (int i = 0; i < 200; i++)
        frame[i] = (unsigned char)(level * 31 + i);
    if (level % 64 == 0)
        pc_switch(main_f());       /* suspended with a deep stack */
    long below = level < d->depth ? recurse(d, level + 1) : 0;
    long sum = 0;
    for (int i = 0; i < 200; i++)
        sum += frame[i] == (unsigned char)(level * 31 + i);
    return below + (sum == 200);
}
static pc_fiber *deep_entry(pc_fiber *self UNUSED, void *arg)
{
    struct deep *d = arg;
    d->checksum = recurse(d, 1);
    return main_f();
}
/* Returns how many levels kept their frame intact (expect depth). */
long fx_deep(int depth)
{
    pc_fiber f;
    struct deep d = { depth, -1 };
    pc_fiber_init(&f, &T, deep_entry, &d);
    while (f.state != PC_DEAD)
        if (pc_switch(&f) != PC_OK)
            return -1;
    pc_fiber_release(&f);
    return d.checksum;
}

/* ---- many live contexts, resumed in a caller-given order ---- */
struct many { long id; long seen; int depth; };
static long many_descend(struct many *m, int depth)
{
    volatile long mine = m->id * 1000 + depth;
    if (depth > 0)
        return many_descend(m, depth - 1) + (mine == m->id * 1000 + depth);
    pc_switch(main_f());           /* suspended at a per-fiber depth */
    return mine == m->id * 1000;
}
static pc_fiber *many_entry(pc_fiber *self UNUSED, void *arg)
{
    struct many *m = arg;
    m->seen = many_descend(m, m->depth);
    return main_f();
}
/* Starts n fibers (each suspends at depth id % 7), then finishes them in
 * the order given; returns how many saw all their locals intact. */
long fx_many(long n, const long *order)
{
    pc_fiber *fs = calloc((size_t)n, sizeof *fs);
    struct many *ms = calloc((size_t)n, sizeof *ms);
    long ok = 0;
    for (long i = 0; i < n; i++) {
        ms[i].id = i;
        ms[i].depth = (int)(i % 7);
        pc_fiber_init(&fs[i], &T, many_entry, &ms[i]);
        if (pc_switch(&fs[i]) != PC_OK)
            return -1;
    }
    for (long k = 0; k < n; k++) {
        long i = order[k];
        if (pc_switch(&fs[i]) != PC_OK)
            return -1;
        ok += fs[i].state == PC_DEAD && ms[i].seen == ms[i].depth + 1;
        pc_fiber_release(&fs[i]);
    }
    free(fs);
    free(ms);
    return ok;
}

/* ---- a chain: fiber i starts fiber i+1 from inside its own stack ---- */
struct chain { pc_fiber *fs; long n; long reached; };
static struct chain CH;
static pc_fiber *chain_entry(pc_fiber *self UNUSED, void *arg)
{
    long i = (long)(intptr_t)arg;
    volatile char pad[512];
    pad[0] = (char)i;
    pad[511] = (char)(pad[0] + 1);
    CH.reached = i;
    if (i + 1 < CH.n)
        pc_switch(&CH.fs[i + 1]);  /* nested start, ever deeper */
    /* resumed when the fiber after us finishes: check our frame */
    if (pad[0] != (char)i)
        return NULL;               /* core aborts: corrupted frame */
    return i ? &CH.fs[i - 1] : main_f();
}
/* Each fiber starts the next; the last one unwinds the chain backwards
 * by finishing into its predecessor.  Returns the deepest index reached. */
long fx_chain(long n)
{
    CH.fs = calloc((size_t)n, sizeof *CH.fs);
    CH.n = n;
    CH.reached = -1;
    for (long i = 0; i < n; i++)
        pc_fiber_init(&CH.fs[i], &T, chain_entry, (void *)(intptr_t)i);
    if (pc_switch(&CH.fs[0]) != PC_OK)
        return -1;
    long dead = 0;
    for (long i = 0; i < n; i++) {
        dead += CH.fs[i].state == PC_DEAD;
        pc_fiber_release(&CH.fs[i]);
    }
    free(CH.fs);
    return dead == n ? CH.reached : -2;
}

/* ---- floating-point environment: per fiber by default, shared with
 * PC_FIBER_SHARE_FPENV ---- */
static int round_code(void)
{
    switch (fegetround()) {
    case FE_TONEAREST: return 0;
    case FE_UPWARD: return 1;
    case FE_DOWNWARD: return 2;
    default: return 3;
    }
}
static int fenv_fiber_seen;
static pc_fiber *fenv_entry(pc_fiber *self UNUSED, void *arg UNUSED)
{
    fesetround(FE_UPWARD);
    pc_switch(main_f());
    fenv_fiber_seen = round_code();    /* ours if owned, main's if shared */
    return main_f();
}
/* Main rounds to nearest, the fiber sets upward and switches back; main
 * reads its mode (-> *main_seen), sets downward and resumes the fiber,
 * which reads its mode (-> *fiber_seen).  Codes: 0 nearest, 1 up, 2 down.
 * Owned by either side: main sees 0, the fiber 1.  Both shared: 1 and 2. */
void fx_fenv(unsigned main_flags, unsigned fiber_flags, int *main_seen, int *fiber_seen)
{
    pc_fiber f;
    fesetround(FE_TONEAREST);
    pc_fiber_set_flags(T.main, main_flags);
    pc_fiber_init(&f, &T, fenv_entry, NULL);
    pc_fiber_set_flags(&f, fiber_flags);
    pc_switch(&f);
    *main_seen = round_code();
    fesetround(FE_DOWNWARD);
    pc_switch(&f);
    *fiber_seen = fenv_fiber_seen;
    pc_fiber_release(&f);
    pc_fiber_set_flags(T.main, 0);
    fesetround(FE_TONEAREST);
}

/* Three parties: main and A share the thread's environment, B has its own.
 * Returns the number of failed checks (expect 0). */
static pc_fiber MA, MB;
static long mixed_bad;
static pc_fiber *mixed_a(pc_fiber *self UNUSED, void *arg UNUSED)
{
    mixed_bad += fegetround() != FE_TONEAREST;   /* the shared one, not B's */
    fesetround(FE_DOWNWARD);                      /* visible to main */
    pc_switch(main_f());
    mixed_bad += fegetround() != FE_TOWARDZERO;  /* main's change, shared */
    return main_f();
}
static pc_fiber *mixed_b(pc_fiber *self UNUSED, void *arg UNUSED)
{
    mixed_bad += fegetround() != FE_TONEAREST;   /* inherited from main */
    fesetround(FE_UPWARD);
    pc_switch(&MA);
    mixed_bad += fegetround() != FE_UPWARD;      /* still its own */
    pc_switch(&MA);
    return main_f();
}
long fx_fenv_mixed(void)
{
    mixed_bad = 0;
    fesetround(FE_TONEAREST);
    pc_fiber_set_flags(T.main, PC_FIBER_SHARE_FPENV);
    pc_fiber_init(&MA, &T, mixed_a, NULL);
    pc_fiber_set_flags(&MA, PC_FIBER_SHARE_FPENV);
    pc_fiber_init(&MB, &T, mixed_b, NULL);
    pc_switch(&MB);                  /* B -> A (new) -> main */
    mixed_bad += fegetround() != FE_DOWNWARD;    /* A's change, shared */
    fesetround(FE_TOWARDZERO);
    pc_switch(&MB);                  /* B checks its own, -> A -> main */
    mixed_bad += fegetround() != FE_TOWARDZERO;
    pc_switch(&MB);                  /* B finishes */
    mixed_bad += MA.state != PC_DEAD || MB.state != PC_DEAD;
    pc_fiber_release(&MA);
    pc_fiber_release(&MB);
    pc_fiber_set_flags(T.main, 0);
    fesetround(FE_TONEAREST);
    return mixed_bad;
}

/* ---- the FP control register itself is per fiber ----
 * fx_fenv goes through fesetround (on arm64 that is FPCR.RMode, on x86-64
 * MXCSR.RC plus the x87 control word).  This reads and writes the register
 * directly and also changes the flush-to-zero bit, which <fenv.h> does not
 * reach, then checks that the arithmetic really follows each side's mode. */
#if defined(__aarch64__)
#  define FPCTL_RMODE_MASK (UINT64_C(3) << 22)
#  define FPCTL_ROUND_UP (UINT64_C(1) << 22)    /* RMode 01: toward +inf */
#  define FPCTL_FLUSH (UINT64_C(1) << 24)       /* FZ */
static uint64_t fpctl_get(void)
{
    uint64_t v;
    __asm__ volatile("mrs %0, fpcr" : "=r"(v));
    return v;
}
static void fpctl_set(uint64_t v) { __asm__ volatile("msr fpcr, %0" : : "r"(v)); }
#elif defined(__x86_64__)
#  define FPCTL_RMODE_MASK (UINT64_C(3) << 13)
#  define FPCTL_ROUND_UP (UINT64_C(2) << 13)    /* MXCSR.RC 10: toward +inf */
#  define FPCTL_FLUSH (UINT64_C(1) << 15)       /* FTZ */
static uint64_t fpctl_get(void)
{
    uint32_t v;
    __asm__ volatile("stmxcsr %0" : "=m"(v));
    return v;
}
static void fpctl_set(uint64_t v)
{
    uint32_t w = (uint32_t)v;
    __asm__ volatile("ldmxcsr %0" : : "m"(w));
}
#endif
static uint64_t fpctl_main_mode, fpctl_fiber_mode;
static long fpctl_bad;
/* bit 0: 1/3 rounded up; bit 1: a tiny inexact result flushed to zero */
static __attribute__((noinline)) int fpctl_effects(void)
{
    volatile double one = 1.0, three = 3.0, tiny = 2.2250738585072014e-308;
    volatile double q = one / three, t = tiny / three;
    return (q == 0x1.5555555555556p-2) | (t == 0.0) << 1;
}
static void fpctl_check(uint64_t mode, int effects)
{
    fpctl_bad += (fpctl_get() & (FPCTL_RMODE_MASK | FPCTL_FLUSH)) != mode;
    fpctl_bad += fpctl_effects() != effects;
}
static pc_fiber *fpctl_entry(pc_fiber *self UNUSED, void *arg)
{
    long rounds = *(long *)arg;
    fpctl_set((fpctl_get() & ~(FPCTL_RMODE_MASK | FPCTL_FLUSH)) | fpctl_fiber_mode);
    for (long i = 0; i < rounds; i++) {
        fpctl_check(fpctl_fiber_mode, 3);
        pc_switch(main_f());
    }
    fpctl_check(fpctl_fiber_mode, 3);
    return main_f();
}
/* Main runs round-to-nearest without flushing, the fiber rounds up and
 * flushes; each side checks register and arithmetic after every switch.
 * Returns the number of failed checks (expect 0). */
long fx_fpctl(void)
{
    pc_fiber f;
    long rounds = 50;
    uint64_t saved = fpctl_get();
    fpctl_bad = 0;
    fpctl_main_mode = 0;
    fpctl_fiber_mode = FPCTL_ROUND_UP | FPCTL_FLUSH;
    fpctl_set(saved & ~(FPCTL_RMODE_MASK | FPCTL_FLUSH));
    pc_fiber_init(&f, &T, fpctl_entry, &rounds);
    while (f.state != PC_DEAD) {
        pc_switch(&f);
        fpctl_check(fpctl_main_mode, 0);
    }
    pc_fiber_release(&f);
    fpctl_set(saved);
    return fpctl_bad;
}

/* ---- 16-byte stack alignment at fiber entry ---- */
static uintptr_t align_seen;
static pc_fiber *align_entry(pc_fiber *self UNUSED, void *arg UNUSED)
{
    /* The compiler trusts the ABI for 16-byte alignment and does not
     * realign: a misaligned entry shows up as a misaligned local. */
    volatile char buf[16] __attribute__((aligned(16)));
    buf[0] = 1;
    align_seen |= (uintptr_t)buf & 15;
#if defined(__aarch64__)
    /* AAPCS64 keeps sp itself 16-byte aligned at all times (hardware may
     * fault on a misaligned sp; qemu-user does not check): read it. */
    uintptr_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    align_seen |= sp & 15;
#endif
    return main_f();
}
/* Starts fibers from call depths that shift the stack by 8 bytes each;
 * returns the OR of all misalignments seen (expect 0). */
static void align_at_depth(int k)
{
    volatile char pad[8 * 3 + 1];
    pad[0] = (char)k;
    if (pad[0] > 0) {
        align_at_depth(k - 1);
        return;
    }
    pc_fiber f;
    pc_fiber_init(&f, &T, align_entry, NULL);
    pc_switch(&f);
    pc_fiber_release(&f);
}
long fx_alignment(void)
{
    align_seen = 0;
    for (int k = 0; k < 8; k++)
        align_at_depth(k);
    return (long)align_seen;
}

/* ---- allocation failure: the switch fails, both sides stay usable ---- */
static long enomem_seen;
static int switch_counting(pc_fiber *to)
{
    int rc;
    while ((rc = pc_switch(to)) == PC_ENOMEM)
        enomem_seen++;             /* retry: the failed switch changed nothing */
    return rc;
}
static pc_fiber *deepfail_entry(pc_fiber *self UNUSED, void *arg UNUSED)
{
    volatile char big[4096];
    big[0] = 7;
    switch_counting(main_f());     /* leaving saves ~4 KiB: an allocation */
    big[1] = big[0];
    switch_counting(main_f());
    return big[1] == 7 ? main_f() : NULL;
}
/* Fails the k-th allocation after the start and runs two fibers to the
 * end.  Returns the number of PC_ENOMEM results seen, -1 if broken. */
long fx_enomem(long k)
{
    pc_fiber a, b;
    int ok = 1;
    enomem_seen = 0;
    pc_fiber_init(&a, &T, deepfail_entry, NULL);
    pc_fiber_init(&b, &T, deepfail_entry, NULL);
    fx_fail_alloc_at(k);
    ok &= switch_counting(&a) == PC_OK;
    ok &= switch_counting(&b) == PC_OK;
    ok &= switch_counting(&a) == PC_OK;
    ok &= switch_counting(&b) == PC_OK;
    while (a.state != PC_DEAD)
        ok &= switch_counting(&a) == PC_OK;
    while (b.state != PC_DEAD)
        ok &= switch_counting(&b) == PC_OK;
    fx_fail_alloc_at(0);
    ok &= pc_switch(&a) == PC_EINVAL;      /* dead fibers cannot be resumed */
    pc_fiber_release(&a);
    pc_fiber_release(&b);
    return ok ? enomem_seen : -1;
}

/* ---- crash paths (run in a subprocess) ---- */
static pc_fiber *returns_null_entry(pc_fiber *self UNUSED, void *arg UNUSED) { return NULL; }
void fx_crash_entry_returns_null(void)
{
    pc_fiber f;
    pc_fiber_init(&f, &T, returns_null_entry, NULL);
    pc_switch(&f);
}

/* ---- callee-saved registers survive switches (regcheck.S) ---- */
/* pc_switch is inline; the assembly fixture calls this out-of-line copy. */
int fx_pc_switch(pc_fiber *target) { return pc_switch(target); }
uint64_t fx_regs_roundtrip(pc_fiber *target, uint64_t seed, uint64_t *out);
#define FX_NREGS 32
static pc_fiber *regs_entry(pc_fiber *self UNUSED, void *arg)
{
    long *bad = arg;
    uint64_t out[FX_NREGS];
    for (int round = 0; round < 1000; round++) {
        uint64_t seed = 0xF1BE000000000000ull + (uint64_t)round * 0x100;
        memset(out, 0, sizeof out);
        fx_regs_roundtrip(main_f(), seed, out);
        for (int i = 0; i < fx_nregs(); i++)
            *bad += out[i] != fx_reg_expect(seed, i);
    }
    return main_f();
}
/* Returns the number of registers that came back wrong, on either side. */
long fx_regs(void)
{
    pc_fiber f;
    long bad = 0;
    uint64_t out[FX_NREGS];
    pc_fiber_init(&f, &T, regs_entry, &bad);
    for (int round = 0; f.state != PC_DEAD; round++) {
        uint64_t seed = 0xA1A1000000000000ull + (uint64_t)round * 0x100;
        memset(out, 0, sizeof out);
        fx_regs_roundtrip(&f, seed, out);
        if (f.state == PC_DEAD)
            break;
        for (int i = 0; i < fx_nregs(); i++)
            bad += out[i] != fx_reg_expect(seed, i);
    }
    pc_fiber_release(&f);
    return bad;
}

/* ---- the floor (floor.S): a bare register swap between two stacks ----
 * What any switch costs on this machine before it copies or tracks
 * anything; the bench prints it beside the core's switch.  Same shape as
 * fx_switch_ns: both sides switch from one loop. */
void fx_floor_swap(void **save_sp, void *load_sp);
void fx_floor_swap_fp(void **save_sp, void *load_sp);
void fx_floor_start(void);
static void *floor_sp[2];            /* [0] main, [1] the other context */
static int floor_side, floor_fp;
static volatile int floor_stop;
static long floor_switches;

static void floor_swap_to(int other)
{
    int me = !other;
    floor_side = other;
    floor_switches++;
    if (floor_fp)
        fx_floor_swap_fp(&floor_sp[me], floor_sp[other]);
    else
        fx_floor_swap(&floor_sp[me], floor_sp[other]);
}
static __attribute__((noinline)) void floor_bounce(long n)
{
    for (long i = 0; i < n && !floor_stop; i++)
        floor_swap_to(!floor_side);
}
static void floor_context(void *arg)
{
    (void)arg;
    floor_bounce(LONG_MAX);
    floor_swap_to(0);                /* for good */
    abort();
}
/* The first frame of the other context, as the swap variant pops it. */
static void *floor_frame(char *top, int fp, void (*fn)(void *))
{
    uintptr_t after = ((uintptr_t)top & ~(uintptr_t)15) - 16;  /* sp after the first return */
#if defined(__x86_64__)
    uint64_t *sp = (uint64_t *)after;
    *--sp = (uint64_t)(uintptr_t)fx_floor_start;   /* return address */
    *--sp = 0;                                      /* rbp */
    *--sp = 0;                                      /* rbx */
    *--sp = 0;                                      /* r12: arg */
    *--sp = (uint64_t)(uintptr_t)fn;                /* r13: fn */
    *--sp = 0;                                      /* r14 */
    *--sp = 0;                                      /* r15 */
    if (fp)
        *--sp = 0;                                  /* control words (skipped) */
    return sp;
#elif defined(__aarch64__)
    size_t size = fp ? 0xb0 : 0xa0;
    uint64_t *frame = (uint64_t *)(after - size);
    memset(frame, 0, size);
    frame[0x40 / 8] = 0;                            /* x19: arg */
    frame[0x48 / 8] = (uint64_t)(uintptr_t)fn;      /* x20: fn */
    frame[0x98 / 8] = (uint64_t)(uintptr_t)fx_floor_start; /* lr */
    return frame;
#else
#  error "no floor fixture for this target"
#endif
}
/* ns per switch; fp: the variant that also reads the FP control state.
 * -1 if the two contexts did not take turns as expected. */
double fx_floor_ns(long n, int fp)
{
    size_t size = 64 * 1024;
    char *stack = malloc(size);
    struct timespec a, b;
    if (!stack)
        return -1.0;
    floor_fp = fp;
    floor_stop = 0;
    floor_side = 0;
    floor_switches = 0;
    floor_sp[1] = floor_frame(stack + size, fp, floor_context);
    floor_bounce(1);                 /* start it from the timed loop's depth */
    clock_gettime(CLOCK_MONOTONIC, &a);
    floor_bounce(n);
    clock_gettime(CLOCK_MONOTONIC, &b);
    long timed = floor_switches - 2;
    floor_stop = 1;
    floor_swap_to(1);                /* it leaves its loop and comes back */
    free(stack);
    if (timed != 2 * n || floor_side != 0)
        return -1.0;
    return elapsed_ns(&a, &b) / (2.0 * n);
}

/* ---- the floor's turns, checked (not timed) ----
 * The swap of fx_floor_ns, with each context logging its side every time
 * it resumes (the log must read 1, 0, 1, 0, ...) and carrying a value in
 * locals across every swap (callee-saved registers: a lost one changes it). */
static long *floor_log, floor_logged, floor_log_size;
static uint64_t floor_value[2];
static uint64_t mix(uint64_t x) { return x * 6364136223846793005ull + 1442695040888963407ull; }
static __attribute__((noinline)) void floor_check_bounce(long n, int me)
{
    uint64_t x = 0x9E3779B97F4A7C15ull + (uint64_t)me;
    for (long i = 0; i < n && !floor_stop; i++) {
        floor_swap_to(!me);
        if (floor_logged < floor_log_size)
            floor_log[floor_logged++] = me;
        x = mix(x);
    }
    floor_value[me] = x;
}
static void floor_check_context(void *arg)
{
    (void)arg;
    floor_check_bounce(LONG_MAX, 1);
    floor_swap_to(0);                /* for good */
    abort();
}
/* The value a side carried over `turns` resumptions. */
uint64_t fx_carried(int side, long turns)
{
    uint64_t x = 0x9E3779B97F4A7C15ull + (uint64_t)side;
    for (long i = 0; i < turns; i++)
        x = mix(x);
    return x;
}
/* n round trips; log[] (size 2n + 1) gets the side that resumed, in order;
 * values[2] what each side carried.  Returns the entries logged, -1 if the
 * stack could not be allocated. */
long fx_floor_check(long n, int fp, long *log, uint64_t *values)
{
    size_t size = 64 * 1024;
    char *stack = malloc(size);
    if (!stack)
        return -1;
    floor_fp = fp;
    floor_stop = 0;
    floor_side = 0;
    floor_switches = 0;
    floor_log = log;
    floor_logged = 0;
    floor_log_size = 2 * n + 1;
    floor_value[0] = floor_value[1] = 0;
    floor_sp[1] = floor_frame(stack + size, fp, floor_check_context);
    floor_check_bounce(n, 0);
    floor_stop = 1;
    floor_swap_to(1);                /* it leaves its loop and comes back */
    free(stack);
    values[0] = floor_value[0];
    values[1] = floor_value[1];
    return floor_logged;
}

/* ---- the raw switch's loops, checked (not timed) ----
 * The two shapes fx_switch_ns times (one call site for both sides, or two),
 * with each side counting its resumptions and carrying a value in locals
 * across every switch (as fx_floor_check). */
static long check_resumed[2];
static uint64_t check_value[2];
static __attribute__((noinline)) void check_bounce(pc_fiber *to, long n, int me)
{
    uint64_t x = 0x9E3779B97F4A7C15ull + (uint64_t)me;
    for (long i = 0; i < n && !bounce_stop; i++) {
        pc_switch(to);
        check_resumed[me]++;
        x = mix(x);
    }
    check_value[me] = x;
}
static pc_fiber *check_one_site_entry(pc_fiber *self UNUSED, void *arg UNUSED)
{
    check_bounce(main_f(), LONG_MAX, 1);
    return main_f();
}
static pc_fiber *check_two_site_entry(pc_fiber *self UNUSED, void *arg UNUSED)
{
    uint64_t x = 0x9E3779B97F4A7C15ull + 1;
    for (;;) {
        pc_switch(main_f());
        if (bounce_stop)
            break;
        check_resumed[1]++;
        x = mix(x);
    }
    check_value[1] = x;
    return main_f();
}
/* n round trips with `flags` on both fibers; out[0..1]: resumptions of
 * main and of the fiber, values[0..1]: what each carried.  Returns 0, or
 * -1 if the fiber did not end. */
long fx_switch_check(long n, unsigned flags, int two_sites, long *out, uint64_t *values)
{
    pc_fiber f;
    long rc = 0;
    check_resumed[0] = check_resumed[1] = 0;
    check_value[0] = check_value[1] = 0;
    bounce_stop = 0;
    pc_fiber_set_flags(T.main, flags);
    pc_fiber_init(&f, &T, two_sites ? check_two_site_entry : check_one_site_entry, NULL);
    pc_fiber_set_flags(&f, flags);
    pc_switch(&f);                   /* started: it switches straight back */
    check_bounce(&f, n, 0);
    bounce_stop = 1;
    pc_switch(&f);                   /* let it finish */
    if (f.state != PC_DEAD)
        rc = -1;
    pc_fiber_release(&f);
    pc_fiber_set_flags(T.main, 0);
    out[0] = check_resumed[0];
    out[1] = check_resumed[1];
    values[0] = check_value[0];
    values[1] = check_value[1];
    return rc;
}

/* ---- a fiber switching back to a starter that was partly saved ----
 * Main starts the fiber from a shallow frame, then switches to it from a
 * deeper one: main's stack now overlaps the fiber's, so that switch saves
 * the part of main below the fiber's stop (main's register block
 * included).  The fiber switching back then resumes a fiber with saved
 * bytes straight from its "up" switch (x86-64: the assembly up path
 * followed by the register-direct restore).  Main checks its registers
 * (regcheck.S), its locals and the fiber's count on every round. */
static long upsaved_count;
static size_t upsaved_main_saved;           /* what the fiber saw last */
static pc_fiber *upsaved_entry(pc_fiber *self UNUSED, void *arg UNUSED)
{
    for (;;) {
        upsaved_count++;
        upsaved_main_saved = main_f()->saved;
        pc_switch(main_f());
    }
    return main_f();
}
static __attribute__((noinline)) long upsaved_deep(pc_fiber *f, long rounds)
{
    volatile unsigned char pad[600];        /* below the fiber's stop */
    uint64_t out[FX_NREGS];
    long bad = 0;
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = (unsigned char)(i * 7);
    for (long r = 0; r < rounds; r++) {
        uint64_t seed = 0x5AFE000000000000ull + (uint64_t)r * 0x100;
        long before = upsaved_count;
        memset(out, 0, sizeof out);
        fx_regs_roundtrip(f, seed, out);
        bad += upsaved_count != before + 1;
        bad += main_f()->saved != 0;        /* main is running: all live */
        for (int i = 0; i < fx_nregs(); i++)
            bad += out[i] != fx_reg_expect(seed, i);
    }
    for (size_t i = 0; i < sizeof pad; i++)
        bad += pad[i] != (unsigned char)(i * 7);
    return bad;
}
/* Returns the number of failed checks (expect 0). */
long fx_up_to_saved(long rounds)
{
    pc_fiber f;
    upsaved_count = 0;
    pc_fiber_init(&f, &T, upsaved_entry, NULL);
    pc_switch(&f);                           /* its stop: this frame */
    long bad = upsaved_deep(&f, rounds);
    pc_fiber_release(&f);                    /* suspended: abandoned */
    return bad + (upsaved_count != rounds + 1);
}

/* The same with the fiber's stop inside main's register block.  A new
 * fiber starts just above its starter's block (I4), so while it runs the
 * starter has saved exactly that block; main starts it from 32 bytes
 * deeper (fx_switch_deeper), so the fiber's stop lies 32 bytes into the
 * block main switches from afterwards: every switch to it then needs part
 * of main's block.  The running fiber's own save always takes its whole
 * block (the arch switch then stores the registers straight into the
 * buffer), so the fiber resumes a starter with exactly its block saved:
 * registers from the buffer, nothing above it to copy.
 * Returns the number of failed checks (expect 0). */
int fx_switch_deeper(pc_fiber *target, long bytes);
long fx_partial_block(long rounds)
{
    pc_fiber f;
    volatile long mine[8];
    long bad = 0;
    for (int i = 0; i < 8; i++)
        mine[i] = 1000 + i;
    upsaved_count = 0;
    upsaved_main_saved = 0;
    pc_fiber_init(&f, &T, upsaved_entry, NULL);
    fx_switch_deeper(&f, 32);                /* its stop: above that block */
#if defined(__x86_64__)
    bad += upsaved_main_saved != sizeof(pc_regs_x86_64);   /* while it started */
#else
    bad += upsaved_main_saved != sizeof(pc_regs_arm64);
#endif
    for (long r = 0; r < rounds; r++) {
        long before = upsaved_count;
        fx_switch_deeper(&f, 0);
        bad += upsaved_count != before + 1;
#if defined(__x86_64__)
        bad += upsaved_main_saved != sizeof(pc_regs_x86_64);
#else
        bad += upsaved_main_saved != sizeof(pc_regs_arm64);
#endif
    }
    for (int i = 0; i < 8; i++)
        bad += mine[i] != 1000 + i;
    pc_fiber_release(&f);                    /* suspended: abandoned */
    return bad;
}
