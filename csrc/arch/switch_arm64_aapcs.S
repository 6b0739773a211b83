/*
 * int pc__switch_asm(pc_thread *t)                 ARM64, AAPCS64
 *
 * Mechanism only, as the x86-64 file: store the callee-saved registers
 * where the C core says, move sp where it says, load the registers from
 * where it says.  Every decision (which bytes to save, the fast paths, the
 * bookkeeping, the FP environment, starting a new fiber) is in
 * pycoro_core.c; this file knows no field of any struct.
 *
 *   1. reserve our register block (below) on our stack; fp, lr, x19 and
 *      x20 go there at once (the call clobbers lr, x19 keeps t)
 *   2. (to, sp') = pc__switch_save(t, block)          to == NULL: failed
 *   3. store our registers at `to`: the block itself, or the front of our
 *      save buffer when C saved our slice
 *   4. sp := sp' (the target's block, or a new fiber's stack_stop)
 *   5. from = pc__switch_restore(t): the target's registers, in its block
 *      or in its save buffer (a new fiber starts there, never returning)
 *   6. load them, drop the block, return 0 from the target's own earlier
 *      call of this function
 * Failure returns -1 with nothing changed.
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
 * and lr is reloaded with the value it had, so a caller that signs its own
 * lr still authenticates (the sp it was signed with is back too).  The object carries no BTI property
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
    sub     sp, sp, #PC_ARM64_FRAME_SIZE    /* our block */
    stp     x29, x30, [sp, #0x90]           /* fp, lr: the call below clobbers lr */
    stp     x19, x20, [sp, #0x40]           /* x19 keeps t across it */
    mov     x19, x0                         /* t */
    mov     x1, sp                          /* arg 2: our block */
    bl      PC_SYM(pc__switch_save)         /* x0 = where our registers go, x1 = sp to go on at */
    cbz     x0, 9f                          /* failed (nothing changed)? */
    stp     d8, d9, [x0, #0x00]             /* our registers, where C said */
    stp     d10, d11, [x0, #0x10]           /* ... */
    stp     d12, d13, [x0, #0x20]           /* ... */
    stp     d14, d15, [x0, #0x30]           /* ... */
    stp     x21, x22, [x0, #0x50]           /* ... */
    stp     x23, x24, [x0, #0x60]           /* ... */
    stp     x25, x26, [x0, #0x70]           /* ... */
    stp     x27, x28, [x0, #0x80]           /* ... */
    ldp     x2, x3, [sp, #0x40]             /* our x19, x20 ... */
    stp     x2, x3, [x0, #0x40]             /* ... with them */
    ldp     x2, x3, [sp, #0x90]             /* our fp, lr ... */
    stp     x2, x3, [x0, #0x90]             /* ... with them */
    mov     sp, x1                          /* the target's block: from here a signal
                                               lands below it, never on its bytes */
    mov     x0, x19                         /* arg 1: t */
    mov     x29, #0                         /* a new fiber's frame chain ends here */
    bl      PC_SYM(pc__switch_restore)      /* x0 = where its registers are */
    ldp     d8, d9, [x0, #0x00]             /* the target's registers */
    ldp     d10, d11, [x0, #0x10]           /* ... */
    ldp     d12, d13, [x0, #0x20]           /* ... */
    ldp     d14, d15, [x0, #0x30]           /* ... */
    ldp     x19, x20, [x0, #0x40]           /* ... */
    ldp     x21, x22, [x0, #0x50]           /* ... */
    ldp     x23, x24, [x0, #0x60]           /* ... */
    ldp     x25, x26, [x0, #0x70]           /* ... */
    ldp     x27, x28, [x0, #0x80]           /* ... */
    ldp     x29, x30, [x0, #0x90]           /* fp, lr: where it returns to */
    add     sp, sp, #PC_ARM64_FRAME_SIZE    /* drop its block */
    mov     w0, #0                          /* the resumed pc_switch returns 0 */
    ret                                     /* into the resumed fiber's caller */
9:
    ldp     x19, x20, [sp, #0x40]           /* what we changed ... */
    ldp     x29, x30, [sp, #0x90]           /* ... back */
    add     sp, sp, #PC_ARM64_FRAME_SIZE    /* drop our block */
    mov     w0, #-1                         /* failure: return -1 (PC_ENOMEM) */
    ret                                     /* to our caller */
    PC_SIZE(pc__switch_asm)
