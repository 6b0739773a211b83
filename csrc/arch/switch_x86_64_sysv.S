/*
 * int pc__switch_asm(pc_thread *t)                 x86-64, System V ABI
 *
 * General path: push the callee-saved registers onto the outgoing stack, let
 * the C core save what the target will overwrite (pc__switch_save), then
 * either resume a suspended fiber (sp := its block, copy its bytes back,
 * pop) or start a new one (sp := its stack_stop, call pc__fiber_main).
 * Returns 0 when this fiber is resumed later, -1 at once if the C core could
 * not save.
 *
 * The two common switches never call C (the same logic as the fast paths
 * of pc__switch_save in pycoro_core.c, which ARM64 uses, and which cover
 * every case the ones here leave out):
 *   up:   resume cur->prev (a fiber switching back to its starter) when our
 *         whole slice fits our buffer and is at most PC_SMALL_COPY bytes:
 *         the registers go straight into the buffer, in block layout, and
 *         the rest of the slice after them.  Nothing is pushed and read
 *         back (a copy that reads bytes pushed moments before waits for
 *         those stores: measured ~2.5 ns per switch).
 *   down: resume a fiber whose slice lies entirely below our sp: push, fix
 *         the target's chain link (invariant I1), restore its bytes.
 * Both resume the target without a round trip through the stack either: if
 * its whole register block is in its buffer, the registers are loaded from
 * there and only the bytes above the block are copied back (-1.6 ns).
 * Both keep the FP environment as fpenv_switch() in C does; MXCSR and the
 * x87 word are read at entry, where the read overlaps the rest (~1 ns).
 * Under ASan everything takes the general path (the C core unpoisons there).
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
 * Scratch below the entry rsp (the red zone): MXCSR at -72, x87 CW at -68,
 * clear of the block.  Field offsets (PC_T_*, PC_F_*): switch_abi.h.
 * No endbr64: only direct calls reach this code, and the object carries no
 * CET property (see switch.S).
 */
#include "asm_macros.h"
#include "switch_abi.h"

#if defined(__SANITIZE_ADDRESS__)
#  define PC_ASM_FAST 0
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define PC_ASM_FAST 0
#  endif
#endif
#ifndef PC_ASM_FAST
#  define PC_ASM_FAST 1
#endif

/* Copy [from + 0x40, from + n) to [to + 0x40, to + n), 16 bytes at a time,
 * lowest first: a slice without its register block.  Clobbers r9, xmm0. */
.macro PC_COPY_ABOVE_BLOCK from, to, n
    movl    $PC_X86_64_FRAME_SIZE, %r9d
    jmp     82f
81:
    movdqu  (\from,%r9), %xmm0
    movups  %xmm0, (\to,%r9)
    addq    $16, %r9
82:
    cmpq    \n, %r9
    jb      81b
.endm

/* The bookkeeping of a fast switch, as switch_fast_finish() in C: cur
 * (rax) suspended with its block at `block`, tgt (rcx) running, t (rdi). */
.macro PC_SWITCH_CURRENT block
    movq    \block, PC_F_SP(%rax)       /* cur->sp = cur->stack_start = block */
    movq    \block, PC_F_STACK_START(%rax)
    movl    $PC_STATE_SUSPENDED, PC_F_STATE(%rax)
    movq    %rcx, PC_T_CURRENT(%rdi)    /* t->current = tgt */
    movl    $PC_STATE_RUNNING, PC_F_STATE(%rcx)
.endm

/* FP environment at a fast switch; rax = cur, rcx = tgt, rdi = t, r10d =
 * cur->flags & tgt->flags, `now` in the red-zone slots written at entry
 * (scratch_mx, scratch_cw: addressed from the current rsp).  pad: 8 if rsp
 * is 16-byte aligned here, 0 if it is 8 off (the call needs it aligned).
 * Clobbers r8, r9, r11, rsi, and the other caller-saved registers if it
 * calls C; keeps rax, rcx, rdi.  Jumps to `done` when nothing needs
 * writing, falls through after the C call otherwise. */
.macro PC_FPENV_SWITCH scratch_mx, scratch_cw, done, pad
    testl   $PC_SHARE_FPENV_FLAG, %r10d /* both share the thread's? */
    jnz     \done                       /* then the switch leaves it alone */
    movl    \scratch_mx, %r8d           /* now: MXCSR ... */
    movzwl  \scratch_cw, %r9d           /* ... and the x87 word above it */
    shlq    $32, %r9
    orq     %r8, %r9
    leaq    PC_F_FPENV(%rax), %r8       /* keep it in cur's slot ... */
    testl   $PC_SHARE_FPENV_FLAG, PC_F_FLAGS(%rax)
    jz      91f
    leaq    PC_T_FPENV(%rdi), %r8       /* ... or the shared one */
91:
    movq    %r9, (%r8)
    leaq    PC_F_FPENV(%rcx), %r8       /* want: tgt's own ... */
    testl   $PC_SHARE_FPENV_FLAG, PC_F_FLAGS(%rcx)
    jz      92f
    leaq    PC_T_FPENV(%rdi), %r8       /* ... or the shared one */
92:
    movq    (%r8), %rsi
    movq    %rsi, %r11
    xorq    %r9, %r11                   /* bits that differ */
    movabsq $PC_FPENV_MASK_X86_64, %r8
    testq   %r8, %r11
    jz      \done                       /* same control bits: nothing to do */
    subq    $\pad, %rsp                 /* the call below: rsp 16-aligned */
    pushq   %rdi
    pushq   %rcx
    pushq   %rax
    movq    %r9, %rdi                   /* pc__fpenv_write(now, want) */
    call    PC_SYM(pc__fpenv_write)
    popq    %rax
    popq    %rcx
    popq    %rdi
    addq    $\pad, %rsp
.endm

    .text
    .globl PC_SYM(pc__switch_asm)
    PC_HIDDEN_SYM(pc__switch_asm)
    PC_TYPE_FUNCTION(pc__switch_asm)
    .p2align 4
PC_SYM(pc__switch_asm):
#if PC_ASM_FAST
    movq    PC_T_CURRENT(%rdi), %rax    /* cur */
    movq    PC_T_TARGET(%rdi), %rcx     /* tgt */
    movl    PC_F_FLAGS(%rax), %r10d
    andl    PC_F_FLAGS(%rcx), %r10d     /* both share the FP environment? */
    testl   $PC_SHARE_FPENV_FLAG, %r10d
    jnz     10f
    stmxcsr -72(%rsp)                   /* no: read it now (red zone) */
    fnstcw  -68(%rsp)
10:
    cmpl    $PC_STATE_RUNNING, PC_F_STATE(%rax)
    jne     20f                         /* (a finished fiber's last switch) */
    cmpl    $PC_STATE_SUSPENDED, PC_F_STATE(%rcx)
    jne     20f                         /* (a new fiber) */
    cmpq    %rcx, PC_F_PREV(%rax)       /* up: tgt is the next one up? */
    jne     20f
    leaq    -56(%rsp), %rdx             /* our block, were it pushed */
    movq    PC_F_STACK_STOP(%rax), %rsi
    subq    %rdx, %rsi                  /* need: our whole slice */
    cmpq    PC_F_CAP(%rax), %rsi        /* fits the buffer we have? */
    ja      20f
    cmpq    $PC_SMALL_COPY, %rsi        /* small? */
    ja      20f
    testq   $15, %rsi                   /* whole 16-byte moves? */
    jnz     20f
    movq    PC_F_COPY(%rax), %r8        /* the block, straight into the buffer */
    movq    %r15, 0x08(%r8)
    movq    %r14, 0x10(%r8)
    movq    %r13, 0x18(%r8)
    movq    %r12, 0x20(%r8)
    movq    %rbx, 0x28(%r8)
    movq    %rbp, 0x30(%r8)
    movq    (%rsp), %r9                 /* our return address */
    movq    %r9, 0x38(%r8)
    PC_COPY_ABOVE_BLOCK %rdx, %r8, %rsi /* then the slice above it */
    movq    %rsi, PC_F_SAVED(%rax)      /* cur->saved = need */
    PC_SWITCH_CURRENT %rdx
    PC_FPENV_SWITCH -72(%rsp), -68(%rsp), 40f, 0
    jmp     40f                         /* resume tgt (cur->prev is unchanged) */
20:
#endif
    pushq   %rbp                        /* 0x30 */
    pushq   %rbx                        /* 0x28 */
    pushq   %r12                        /* 0x20 */
    pushq   %r13                        /* 0x18 */
    pushq   %r14                        /* 0x10 */
    pushq   %r15                        /* 0x08 */
    subq    $8, %rsp                    /* 0x00: padding, for alignment */
#if PC_ASM_FAST
    cmpl    $PC_STATE_RUNNING, PC_F_STATE(%rax)
    jne     30f
    cmpl    $PC_STATE_SUSPENDED, PC_F_STATE(%rcx)
    jne     30f
    movq    PC_F_STACK_STOP(%rcx), %rsi /* down: tgt's stop ... */
    cmpq    %rsp, %rsi                  /* ... at or below our block */
    ja      30f
    cmpq    %rsi, PC_F_STACK_STOP(%rax) /* ... and not above our own stop */
    jb      30f
    movq    %rax, %rdx                  /* I1: skip fibers ending at or below */
21:
    testq   %rdx, %rdx                  /* tgt's stop (all below our sp, so */
    jz      22f                         /* nothing of theirs is unsaved) */
    cmpq    %rsi, PC_F_STACK_STOP(%rdx)
    ja      22f
    movq    PC_F_PREV(%rdx), %rdx
    jmp     21b
22:
    movq    %rdx, PC_F_PREV(%rcx)       /* tgt->prev */
    PC_SWITCH_CURRENT %rsp
    PC_FPENV_SWITCH -16(%rsp), -12(%rsp), 40f, 8  /* (entry rsp - 72 = block - 16) */
40:
    /* resume tgt (rcx; rdi = t).  Its saved bytes go back lowest address
     * first (see copy_up16 in pycoro_core.c for why); when its whole
     * register block is among them, the registers come straight from the
     * buffer and only the slice above the block is copied to the stack. */
    movq    PC_F_SP(%rcx), %rdx         /* tgt's block ... */
    movq    %rdx, %rsp                  /* ... is our sp from here: a signal
                                           frame lands below it, never on the
                                           bytes restored above it */
    movq    PC_F_SAVED(%rcx), %rsi
    cmpq    $PC_X86_64_FRAME_SIZE, %rsi
    jb      45f                         /* none, or part of the block only */
    cmpq    $PC_RESTORE_UP16, %rsi
    ja      45f
    testq   $15, %rsi
    jnz     45f
    movq    $0, PC_F_SAVED(%rcx)
    movq    PC_F_COPY(%rcx), %r8
    PC_COPY_ABOVE_BLOCK %r8, %rdx, %rsi /* the slice above the block */
    movq    0x38(%r8), %r9              /* the return address, onto the stack */
    movq    %r9, 0x38(%rdx)
    movq    0x08(%r8), %r15             /* the registers, from the buffer */
    movq    0x10(%r8), %r14
    movq    0x18(%r8), %r13
    movq    0x20(%r8), %r12
    movq    0x28(%r8), %rbx
    movq    0x30(%r8), %rbp
    leaq    0x38(%rdx), %rsp            /* sp at the return address */
    xorl    %eax, %eax                  /* the resumed pc_switch returns 0 */
    ret
45:
    testq   %rsi, %rsi                  /* pop the block from the stack */
    jz      43f                         /* all still on the stack */
    call    PC_SYM(pc__switch_restore)  /* the rest: the C copy (rdi = t) */
43:
    xorl    %eax, %eax                  /* the resumed pc_switch returns 0 */
    jmp     1f
30:
#endif
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
