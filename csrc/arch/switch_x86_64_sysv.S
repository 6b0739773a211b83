/*
 * int pc__switch_asm(pc_thread *t)                 x86-64, System V ABI
 *
 * Mechanism only: store the callee-saved registers where the C core says,
 * move the stack pointer where it says, load the registers from where it
 * says.  Every decision (which bytes to save, the fast paths, the
 * bookkeeping, the FP environment, starting a new fiber) is in
 * pycoro_core.c; this file knows no field of any struct.
 *
 *   1. reserve our register block (below) on our stack
 *   2. (to, sp') = pc__switch_save(t, block)          to == NULL: failed
 *   3. store our registers at `to`: the block itself, or the front of our
 *      save buffer when C saved our slice (then they never touch the stack)
 *   4. sp := sp' (the target's block, or a new fiber's stack_stop)
 *   5. from = pc__switch_restore(t): the target's registers, in its block
 *      or in its save buffer (a new fiber starts there, never returning)
 *   6. load them, put the return address on the stack, return 0 from the
 *      target's own earlier call of this function
 * Failure returns -1 with nothing stored and nothing changed.
 *
 * Register block at the saved sp (struct pc_regs_x86_64, asserted in C):
 *   offset  size  content
 *   0x00    8     padding (keeps the block and the calls 16-byte aligned)
 *   0x08    8     r15
 *   0x10    8     r14
 *   0x18    8     r13
 *   0x20    8     r12
 *   0x28    8     rbx
 *   0x30    8     rbp
 *   0x38    8     return address (pushed by the caller's call)
 *   0x40          = PC_X86_64_FRAME_SIZE
 * Entry rsp % 16 == 8, so the block (7 * 8 bytes more) is 16-byte aligned;
 * the padding slot keeps t across the first call.  The block is reserved
 * before C runs, so C's frames lie below it and a signal never lands on it.
 * MXCSR and the x87 control word are not here: the C core switches them.
 * No endbr64: only direct calls reach this code, and the object carries no
 * CET property (see switch.S).
 */
#include "asm_macros.h"
#include "switch_abi.h"

    .text
    .globl PC_SYM(pc__switch_asm)
    PC_HIDDEN_SYM(pc__switch_asm)
    PC_TYPE_FUNCTION(pc__switch_asm)
    .p2align 4
PC_SYM(pc__switch_asm):
    subq    $0x38, %rsp                 /* our block: 0x00-0x37, return address above */
    movq    %rdi, 0x00(%rsp)            /* keep t in the padding slot */
    movq    %rsp, %rsi                  /* arg 2: our block */
    call    PC_SYM(pc__switch_save)     /* rax = where our registers go, rdx = sp to go on at */
    testq   %rax, %rax                  /* failed (nothing changed)? */
    jz      9f
    movq    0x00(%rsp), %rdi            /* arg 1 of the next call: t */
    movq    %r15, 0x08(%rax)            /* our registers, where C said */
    movq    %r14, 0x10(%rax)            /* ... */
    movq    %r13, 0x18(%rax)            /* ... */
    movq    %r12, 0x20(%rax)            /* ... */
    movq    %rbx, 0x28(%rax)            /* ... */
    movq    %rbp, 0x30(%rax)            /* ... */
    movq    0x38(%rsp), %rcx            /* our return address ... */
    movq    %rcx, 0x38(%rax)            /* ... with them */
    movq    %rdx, %rsp                  /* the target's block: from here a signal
                                           lands below it, never on its bytes */
    xorl    %ebp, %ebp                  /* a new fiber's frame chain ends here */
    call    PC_SYM(pc__switch_restore)  /* rax = where its registers are */
    movq    0x08(%rax), %r15            /* the target's registers */
    movq    0x10(%rax), %r14            /* ... */
    movq    0x18(%rax), %r13            /* ... */
    movq    0x20(%rax), %r12            /* ... */
    movq    0x28(%rax), %rbx            /* ... */
    movq    0x30(%rax), %rbp            /* ... */
    movq    0x38(%rax), %rcx            /* its return address ... */
    movq    %rcx, 0x38(%rsp)            /* ... on its stack, above its block */
    addq    $0x38, %rsp                 /* sp at the return address */
    xorl    %eax, %eax                  /* the resumed pc_switch returns 0 */
    ret                                 /* into the resumed fiber's caller */
9:
    addq    $0x38, %rsp                 /* drop our block */
    movl    $-1, %eax                   /* failure: return -1 (PC_ENOMEM) */
    ret                                 /* the registers were never touched */
    PC_SIZE(pc__switch_asm)
