/* Constants shared by the C core and the arch switch files (C and assembler:
 * #defines only). */
#ifndef PYCORO_SWITCH_ABI_H
#define PYCORO_SWITCH_ABI_H

/* pc__switch_save's verdict, returned in the second result register. */
#define PC_RESUME_FAIL 0   /* allocation failed: return -1, nothing switched */
#define PC_RESUME_OLD 1    /* sp := saved block of a suspended fiber, restore */
#define PC_RESUME_NEW 2    /* sp := stack_stop of a new fiber, call its main */
#define PC_RESUME_LIVE 3   /* sp := saved block of a suspended fiber whose bytes
                              are all still on the stack: nothing to restore */

/* Size of the register block each switch pushes (see the .S offset tables). */
#define PC_X86_64_FRAME_SIZE 0x40
#define PC_ARM64_FRAME_SIZE 0xa0

/* What the x86-64 fast paths read and write of pc_thread and pc_fiber
 * (LP64 layout; every value is _Static_assert-ed in pycoro_core.c). */
#define PC_T_CURRENT 0x08
#define PC_T_TARGET 0x10
#define PC_T_FPENV 0x20
#define PC_F_STACK_START 0x00
#define PC_F_STACK_STOP 0x08
#define PC_F_COPY 0x10
#define PC_F_SAVED 0x18
#define PC_F_CAP 0x20
#define PC_F_PREV 0x28
#define PC_F_SP 0x30
#define PC_F_STATE 0x50
#define PC_F_FLAGS 0x54
#define PC_F_FPENV 0x58
#define PC_STATE_RUNNING 1
#define PC_STATE_SUSPENDED 2
#define PC_SHARE_FPENV_FLAG 1
/* x86-64 MXCSR control bits and the x87 control word, as packed in fpenv */
#define PC_FPENV_MASK_X86_64 0xffff0000ffc0

/* Slices the fast paths copy inline in 16-byte moves: saving at most
 * PC_SMALL_COPY bytes, restoring at most PC_RESTORE_UP16 bytes. */
#define PC_SMALL_COPY 256
#define PC_RESTORE_UP16 1024

#endif
