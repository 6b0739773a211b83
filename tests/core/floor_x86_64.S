/* x86-64 bodies of the floor fixtures (see floor.S).
 * Frame at the saved sp: [fp variant: 8 bytes MXCSR + x87 CW] r15 r14 r13
 * r12 rbx rbp, return address.  fx_floor_start: r12 = arg, r13 = fn. */
.macro FLOOR_PUSH
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
.endm
.macro FLOOR_POP_RET
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    ret
.endm

    .text
    .globl PC_SYM(fx_floor_swap)
    PC_TYPE_FUNCTION(fx_floor_swap)
    .p2align 4
PC_SYM(fx_floor_swap):
    FLOOR_PUSH
    movq    %rsp, (%rdi)            /* *save_sp = our frame */
    movq    %rsi, %rsp              /* the other context's frame */
    FLOOR_POP_RET
    PC_SIZE(fx_floor_swap)

    .globl PC_SYM(fx_floor_swap_fp)
    PC_TYPE_FUNCTION(fx_floor_swap_fp)
    .p2align 4
PC_SYM(fx_floor_swap_fp):
    FLOOR_PUSH
    subq    $8, %rsp
    stmxcsr (%rsp)                  /* read MXCSR */
    fnstcw  4(%rsp)                 /* read the x87 control word */
    movq    %rsp, (%rdi)
    movq    %rsi, %rsp
    addq    $8, %rsp                /* skip (never reload) the control words */
    FLOOR_POP_RET
    PC_SIZE(fx_floor_swap_fp)

    .globl PC_SYM(fx_floor_start)
    PC_TYPE_FUNCTION(fx_floor_start)
    .p2align 4
PC_SYM(fx_floor_start):
    movq    %r12, %rdi              /* arg */
    call    *%r13                   /* fn(arg): never returns */
    ud2
    PC_SIZE(fx_floor_start)
