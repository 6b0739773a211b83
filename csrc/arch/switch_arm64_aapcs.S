/*
 * int pc__switch_asm(pc_thread *t)                 ARM64, AAPCS64
 *
 * Mechanism only, as the x86-64 file: save the callee-saved registers on
 * the outgoing stack, let the C core decide everything else
 * (pycoro_core.c, pc__switch_save: what to save, the fast paths, the
 * bookkeeping, the FP environment), move sp where it says, restore the
 * registers found there.  This file knows no field of any struct.
 *
 *   1. push the register block (below)
 *   2. (sp', verdict) = pc__switch_save(t, sp)           the C core
 *   3. by verdict (switch_abi.h):
 *        PC_RESUME_LIVE  sp := sp', pop, return 0
 *        PC_RESUME_OLD   sp := sp', pc__switch_restore(t), pop, return 0
 *        PC_RESUME_NEW   sp := sp', pc__fiber_main(t), never returns
 *        PC_RESUME_FAIL  pop our own block, return -1
 * "return 0" returns from the target's own earlier call of this function.
 *
 * Register block at the saved sp (struct pc_regs_arm64, asserted in C):
 *   offset  size  content
 *   0x00    8*8   d8-d15 (low 64 bits of v8-v15, callee-saved)
 *   0x40    8*10  x19-x28
 *   0x90    8     x29 (fp)
 *   0x98    8     x30 (lr: where pc_switch returns to)
 *   0xa0          = PC_ARM64_FRAME_SIZE (a multiple of 16: sp stays aligned)
 * FPCR is not here: the C core switches it (pycoro_core.c, fpenv_switch).
 * No PAC or BTI instructions: the function is reached only by direct bl,
 * and lr is saved and reloaded at the same stack address, so a caller that
 * signs its own lr still authenticates.  The object carries no BTI property
 * note, so a module linked with it is not marked BTI-enforced.
 */
#include "asm_macros.h"
#include "switch_abi.h"

    .text
    .globl PC_SYM(pc__switch_asm)
    PC_HIDDEN_SYM(pc__switch_asm)
    PC_TYPE_FUNCTION(pc__switch_asm)
    .p2align 4
PC_SYM(pc__switch_asm):
    sub     sp, sp, #PC_ARM64_FRAME_SIZE    /* room for the block */
    stp     d8, d9, [sp, #0x00]             /* FP callee-saved */
    stp     d10, d11, [sp, #0x10]           /* ... */
    stp     d12, d13, [sp, #0x20]           /* ... */
    stp     d14, d15, [sp, #0x30]           /* ... */
    stp     x19, x20, [sp, #0x40]           /* integer callee-saved */
    stp     x21, x22, [sp, #0x50]           /* ... */
    stp     x23, x24, [sp, #0x60]           /* ... */
    stp     x25, x26, [sp, #0x70]           /* ... */
    stp     x27, x28, [sp, #0x80]           /* ... */
    stp     x29, x30, [sp, #0x90]           /* fp, lr */
    mov     x19, x0                         /* keep t across the call (x19 is saved) */
    mov     x1, sp                          /* arg 2: our register block */
    bl      PC_SYM(pc__switch_save)         /* x0 = sp to go on at, x1 = verdict */
    cmp     x1, #PC_RESUME_OLD              /* resume, bytes to copy back? */
    b.eq    2f
    cmp     x1, #PC_RESUME_LIVE             /* resume, its bytes all in place? */
    b.ne    3f
    mov     sp, x0                          /* the target's register block */
    mov     w0, #0                          /* the resumed pc_switch returns 0 */
    b       1f
2:
    mov     sp, x0                          /* the target's register block: a
                                               signal lands below it, never on
                                               the bytes restored above it */
    mov     x0, x19                         /* arg 1: t */
    bl      PC_SYM(pc__switch_restore)      /* copy its saved bytes back above sp */
    mov     w0, #0                          /* the resumed pc_switch returns 0 */
1:
    ldp     d8, d9, [sp, #0x00]             /* FP callee-saved */
    ldp     d10, d11, [sp, #0x10]           /* ... */
    ldp     d12, d13, [sp, #0x20]           /* ... */
    ldp     d14, d15, [sp, #0x30]           /* ... */
    ldp     x19, x20, [sp, #0x40]           /* integer callee-saved */
    ldp     x21, x22, [sp, #0x50]           /* ... */
    ldp     x23, x24, [sp, #0x60]           /* ... */
    ldp     x25, x26, [sp, #0x70]           /* ... */
    ldp     x27, x28, [sp, #0x80]           /* ... */
    ldp     x29, x30, [sp, #0x90]           /* fp, lr */
    add     sp, sp, #PC_ARM64_FRAME_SIZE    /* drop the block */
    ret                                     /* into the resumed fiber's caller */
3:
    cmp     x1, #PC_RESUME_NEW              /* start a new fiber? */
    b.eq    4f
    mov     w0, #-1                         /* failure: pop our own block, return -1 */
    b       1b
4:
    mov     sp, x0                          /* the new fiber's stack_stop (16-aligned) */
    mov     x0, x19                         /* arg 1: t */
    mov     x29, #0                         /* end of the frame chain for unwinders */
    bl      PC_SYM(pc__fiber_main)          /* never returns; lr is the guard below */
    bl      PC_SYM(pc__fiber_returned)      /* guard: returning off the end aborts */
    brk     #0                              /* not reached */
    PC_SIZE(pc__switch_asm)
