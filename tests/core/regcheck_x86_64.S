/* x86-64 body of fx_regs_roundtrip: out[0..5] = rbx, rbp, r12, r13, r14, r15 */
    .text
    .globl PC_SYM(fx_regs_roundtrip)
    PC_TYPE_FUNCTION(fx_regs_roundtrip)
    .p2align 4
PC_SYM(fx_regs_roundtrip):
    pushq   %rbp                    /* keep the caller's registers */
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    pushq   %rdx                    /* out; rsp is now 16-byte aligned */
    leaq    1(%rsi), %rbx           /* seed + 1 .. seed + 6 */
    leaq    2(%rsi), %rbp
    leaq    3(%rsi), %r12
    leaq    4(%rsi), %r13
    leaq    5(%rsi), %r14
    leaq    6(%rsi), %r15
    call    PC_SYM(fx_pc_switch)       /* rdi = target */
    popq    %rdx
    movq    %rbx, 0(%rdx)
    movq    %rbp, 8(%rdx)
    movq    %r12, 16(%rdx)
    movq    %r13, 24(%rdx)
    movq    %r14, 32(%rdx)
    movq    %r15, 40(%rdx)
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    ret
    PC_SIZE(fx_regs_roundtrip)

/* int fx_switch_deeper(pc_fiber *target, long bytes): fx_pc_switch(target)
 * from `bytes` (a multiple of 16) further down the stack than a direct
 * call would be. */
    .globl PC_SYM(fx_switch_deeper)
    PC_TYPE_FUNCTION(fx_switch_deeper)
    .p2align 4
PC_SYM(fx_switch_deeper):
    pushq   %rbp                    /* rsp 16-byte aligned from here */
    movq    %rsp, %rbp
    subq    %rsi, %rsp              /* the extra depth */
    call    PC_SYM(fx_pc_switch)    /* rdi = target */
    movq    %rbp, %rsp
    popq    %rbp
    ret
    PC_SIZE(fx_switch_deeper)
