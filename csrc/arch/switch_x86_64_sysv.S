/*
 * int pc__switch_asm(pc_thread *t)                 x86-64, System V ABI
 *
 * Mechanism only: save the callee-saved registers on the outgoing stack,
 * let the C core decide everything else, move the stack pointer where it
 * says, restore the registers found there.  Every decision (which bytes to
 * save, the fast paths, the bookkeeping, the FP environment) is in
 * pycoro_core.c, pc__switch_save; this file knows no field of any struct.
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
 * Entry rsp % 16 == 8, so the block (7 * 8 bytes more) is 16-byte aligned.
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
    pushq   %rbp                        /* 0x30 */
    pushq   %rbx                        /* 0x28 */
    pushq   %r12                        /* 0x20 */
    pushq   %r13                        /* 0x18 */
    pushq   %r14                        /* 0x10 */
    pushq   %r15                        /* 0x08 */
    subq    $8, %rsp                    /* 0x00: padding, for alignment */
    movq    %rdi, %rbx                  /* keep t across the call (rbx is saved) */
    movq    %rsp, %rsi                  /* arg 2: our register block */
    call    PC_SYM(pc__switch_save)     /* rax = sp to go on at, rdx = verdict */
    cmpq    $PC_RESUME_OLD, %rdx        /* resume, bytes to copy back? */
    je      2f
    cmpq    $PC_RESUME_LIVE, %rdx       /* resume, its bytes all in place? */
    jne     3f
    movq    %rax, %rsp                  /* the target's register block */
    xorl    %eax, %eax                  /* the resumed pc_switch returns 0 */
    jmp     1f
2:
    movq    %rax, %rsp                  /* the target's register block: a
                                           signal lands below it, never on
                                           the bytes restored above it */
    movq    %rbx, %rdi                  /* arg 1: t */
    call    PC_SYM(pc__switch_restore)  /* copy its saved bytes back above rsp */
    xorl    %eax, %eax                  /* the resumed pc_switch returns 0 */
1:
    addq    $8, %rsp                    /* drop the padding */
    popq    %r15                        /* 0x08 */
    popq    %r14                        /* 0x10 */
    popq    %r13                        /* 0x18 */
    popq    %r12                        /* 0x20 */
    popq    %rbx                        /* 0x28 */
    popq    %rbp                        /* 0x30 */
    ret                                 /* into the resumed fiber's caller */
3:
    cmpq    $PC_RESUME_NEW, %rdx        /* start a new fiber? */
    je      4f
    movl    $-1, %eax                   /* failure: pop our own block, return -1 */
    jmp     1b
4:
    movq    %rax, %rsp                  /* the new fiber's stack_stop (16-aligned) */
    movq    %rbx, %rdi                  /* arg 1: t */
    xorl    %ebp, %ebp                  /* end of the frame chain for unwinders */
    call    PC_SYM(pc__fiber_main)      /* never returns; pushes the guard below */
    call    PC_SYM(pc__fiber_returned)  /* guard: returning off the end aborts */
    ud2                                 /* not reached */
    PC_SIZE(pc__switch_asm)
