/* ARM64 body of fx_regs_roundtrip (AAPCS64: x0 = target, x1 = seed, x2 = out).
 * out[0..18] = x19-x28, x29 (fp), d8-d15, expected to hold seed + 1 + i.
 * lr (x30) is covered too: pc_switch returns through it, so a lost lr
 * crashes instead of reporting.  The d registers are filled with raw bit
 * patterns (fmov from a general register), compared as 64-bit integers. */
    .text
    .globl PC_SYM(fx_regs_roundtrip)
    PC_TYPE_FUNCTION(fx_regs_roundtrip)
    .p2align 4
PC_SYM(fx_regs_roundtrip):
    stp     x29, x30, [sp, #-0xb0]!     /* keep the caller's registers */
    stp     x19, x20, [sp, #0x10]
    stp     x21, x22, [sp, #0x20]
    stp     x23, x24, [sp, #0x30]
    stp     x25, x26, [sp, #0x40]
    stp     x27, x28, [sp, #0x50]
    stp     d8, d9, [sp, #0x60]
    stp     d10, d11, [sp, #0x70]
    stp     d12, d13, [sp, #0x80]
    stp     d14, d15, [sp, #0x90]
    str     x2, [sp, #0xa0]             /* out; sp stays 16-byte aligned */
    add     x19, x1, #1                 /* seed + 1 .. seed + 10 */
    add     x20, x1, #2
    add     x21, x1, #3
    add     x22, x1, #4
    add     x23, x1, #5
    add     x24, x1, #6
    add     x25, x1, #7
    add     x26, x1, #8
    add     x27, x1, #9
    add     x28, x1, #10
    add     x29, x1, #11                /* fp: seed + 11 (no frame record) */
    add     x9, x1, #12                 /* d8-d15: seed + 12 .. seed + 19 */
    fmov    d8, x9
    add     x9, x1, #13
    fmov    d9, x9
    add     x9, x1, #14
    fmov    d10, x9
    add     x9, x1, #15
    fmov    d11, x9
    add     x9, x1, #16
    fmov    d12, x9
    add     x9, x1, #17
    fmov    d13, x9
    add     x9, x1, #18
    fmov    d14, x9
    add     x9, x1, #19
    fmov    d15, x9
    bl      PC_SYM(fx_pc_switch)           /* x0 = target */
    ldr     x2, [sp, #0xa0]
    stp     x19, x20, [x2, #0]
    stp     x21, x22, [x2, #16]
    stp     x23, x24, [x2, #32]
    stp     x25, x26, [x2, #48]
    stp     x27, x28, [x2, #64]
    str     x29, [x2, #80]
    stp     d8, d9, [x2, #88]
    stp     d10, d11, [x2, #104]
    stp     d12, d13, [x2, #120]
    stp     d14, d15, [x2, #136]
    ldp     x19, x20, [sp, #0x10]
    ldp     x21, x22, [sp, #0x20]
    ldp     x23, x24, [sp, #0x30]
    ldp     x25, x26, [sp, #0x40]
    ldp     x27, x28, [sp, #0x50]
    ldp     d8, d9, [sp, #0x60]
    ldp     d10, d11, [sp, #0x70]
    ldp     d12, d13, [sp, #0x80]
    ldp     d14, d15, [sp, #0x90]
    ldp     x29, x30, [sp], #0xb0
    ret
    PC_SIZE(fx_regs_roundtrip)

/* int fx_switch_deeper(pc_fiber *target, long bytes): fx_pc_switch(target)
 * from `bytes` (a multiple of 16) further down the stack than a direct
 * call would be. */
    .globl PC_SYM(fx_switch_deeper)
    PC_TYPE_FUNCTION(fx_switch_deeper)
    .p2align 4
PC_SYM(fx_switch_deeper):
    stp     x29, x30, [sp, #-16]!
    mov     x29, sp
    sub     sp, sp, x1              /* the extra depth */
    bl      PC_SYM(fx_pc_switch)    /* x0 = target */
    mov     sp, x29
    ldp     x29, x30, [sp], #16
    ret
    PC_SIZE(fx_switch_deeper)
