/* ARM64 bodies of the floor fixtures (see floor.S).
 * Frame at the saved sp: d8-d15 (0x00), x19-x28 (0x40), fp, lr (0x90),
 * [fp variant: FPCR at 0xa0, padding]. fx_floor_start: x19 = arg, x20 = fn. */
.macro FLOOR_STORE
    stp     d8, d9, [sp, #0x00]
    stp     d10, d11, [sp, #0x10]
    stp     d12, d13, [sp, #0x20]
    stp     d14, d15, [sp, #0x30]
    stp     x19, x20, [sp, #0x40]
    stp     x21, x22, [sp, #0x50]
    stp     x23, x24, [sp, #0x60]
    stp     x25, x26, [sp, #0x70]
    stp     x27, x28, [sp, #0x80]
    stp     x29, x30, [sp, #0x90]
.endm
.macro FLOOR_LOAD
    ldp     d8, d9, [sp, #0x00]
    ldp     d10, d11, [sp, #0x10]
    ldp     d12, d13, [sp, #0x20]
    ldp     d14, d15, [sp, #0x30]
    ldp     x19, x20, [sp, #0x40]
    ldp     x21, x22, [sp, #0x50]
    ldp     x23, x24, [sp, #0x60]
    ldp     x25, x26, [sp, #0x70]
    ldp     x27, x28, [sp, #0x80]
    ldp     x29, x30, [sp, #0x90]
.endm

    .text
    .globl PC_SYM(fx_floor_swap)
    PC_TYPE_FUNCTION(fx_floor_swap)
    .p2align 4
PC_SYM(fx_floor_swap):
    sub     sp, sp, #0xa0
    FLOOR_STORE
    mov     x9, sp
    str     x9, [x0]                /* *save_sp = our frame */
    mov     sp, x1                  /* the other context's frame */
    FLOOR_LOAD
    add     sp, sp, #0xa0
    ret
    PC_SIZE(fx_floor_swap)

    .globl PC_SYM(fx_floor_swap_fp)
    PC_TYPE_FUNCTION(fx_floor_swap_fp)
    .p2align 4
PC_SYM(fx_floor_swap_fp):
    sub     sp, sp, #0xb0
    FLOOR_STORE
    mrs     x9, fpcr                /* read FPCR */
    str     x9, [sp, #0xa0]
    mov     x9, sp
    str     x9, [x0]
    mov     sp, x1
    FLOOR_LOAD
    add     sp, sp, #0xb0           /* (FPCR never reloaded) */
    ret
    PC_SIZE(fx_floor_swap_fp)

    .globl PC_SYM(fx_floor_start)
    PC_TYPE_FUNCTION(fx_floor_start)
    .p2align 4
PC_SYM(fx_floor_start):
    mov     x0, x19                 /* arg */
    blr     x20                     /* fn(arg): never returns */
    brk     #0
    PC_SIZE(fx_floor_start)
