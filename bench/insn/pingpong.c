/* Instructions per switch round trip of the raw C core, for counting
 * (callgrind on x86-64, qemu's per-instruction trace on ARM64): no Python,
 * no cffi, only pycoro_core.c and the arch switch.  See count.sh.
 *
 *   pingpong N FLAGS   N round trips main -> fiber -> main, both sides
 *                      switching from one loop (as the bench's raw row);
 *                      FLAGS = pc_fiber.flags of both (1: shared FP env).
 */
#include "pycoro_core.h"

#include <stdio.h>
#include <stdlib.h>

static pc_thread T;
static pc_fiber M, F;
static volatile int stop;

static __attribute__((noinline)) void bounce(pc_fiber *to, long n)
{
    for (long i = 0; i < n && !stop; i++)
        pc_switch(to);
}

static pc_fiber *entry(pc_fiber *self, void *arg)
{
    (void)self;
    (void)arg;
    bounce(&M, 1L << 62);
    return &M;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000;
    unsigned flags = argc > 2 ? (unsigned)atoi(argv[2]) : 0;
    pc_thread_init(&T, &M, NULL);
    pc_fiber_init(&F, &T, entry, NULL);
    pc_fiber_set_flags(&M, flags);
    pc_fiber_set_flags(&F, flags);
    bounce(&F, 1);                 /* start it from bounce(): same depth */
    bounce(&F, n);
    stop = 1;
    pc_switch(&F);                 /* let it finish */
    if (F.state != PC_DEAD)
        return 1;
    pc_fiber_release(&F);
    pc_thread_fini(&T);
    printf("%ld round trips, saved %zu\n", n, pc_saved_bytes(&F));
    return 0;
}
