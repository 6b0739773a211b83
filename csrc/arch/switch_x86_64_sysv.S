/*
 * int pc__switch_asm(pc_thread *t)                 x86-64, System V ABI
 *
 * Pushes the callee-saved state onto the outgoing stack, lets the C core
 * save what the target will overwrite (pc__switch_save), then either resumes
 * a suspended fiber (sp := its block, copy its bytes back, pop) or starts a
 * new one (sp := its stack_stop, call pc__fiber_main).  Returns 0 when this
 * fiber is resumed later, -1 at once if the C core could not save.
 *
 * Register block at the saved sp (struct pc_regs_x86_64, asserted in C):
 *   offset  size  content
 *   0x00    8     padding (keeps the block 16-byte aligned)
 *   0x08    8     r15
 *   0x10    8     r14
 *   0x18    8     r13
 *   0x20    8     r12
 *   0x28    8     rbx
 *   0x30    8     rbp
 *   0x38    8     return address (pushed by the caller's call)
 *   0x40          = PC_X86_64_FRAME_SIZE
 * The block is 16-byte aligned (entry rsp % 16 == 8, plus 7 * 8 bytes).
 * MXCSR and the x87 control word are not here: the C core switches them
 * (pycoro_core.c, fpenv_switch), and leaves them alone between fibers that
 * share them (PC_FIBER_SHARE_FPENV).
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
    cmpq    $PC_RESUME_LIVE, %rdx       /* resume, its bytes all in place? */
    je      6f
    cmpq    $PC_RESUME_OLD, %rdx        /* resume a suspended fiber? */
    je      2f
    cmpq    $PC_RESUME_NEW, %rdx        /* start a new fiber? */
    je      3f
    movl    $-1, %eax                   /* failure: pop our own block, return -1 */
    jmp     1f
6:
    movq    %rax, %rsp                  /* the target's register block */
    xorl    %eax, %eax                  /* the resumed pc_switch returns 0 */
    jmp     1f
2:
    movq    %rax, %rsp                  /* the target's register block */
    movq    %rbx, %rdi                  /* arg 1: t */
    call    PC_SYM(pc__switch_restore)  /* copy its saved bytes back above rsp */
    xorl    %eax, %eax                  /* the resumed pc_switch returns 0 */
1:
    addq    $8, %rsp                    /* drop the padding */
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    ret                                 /* into the resumed fiber's caller */
3:
    movq    %rax, %rsp                  /* the new fiber's stack_stop (16-aligned) */
    movq    %rbx, %rdi                  /* arg 1: t */
    xorl    %ebp, %ebp                  /* end of the frame chain for unwinders */
    call    PC_SYM(pc__fiber_main)      /* never returns; pushes the guard below */
    call    PC_SYM(pc__fiber_returned)  /* guard: returning off the end aborts */
    ud2                                 /* not reached */
    PC_SIZE(pc__switch_asm)
