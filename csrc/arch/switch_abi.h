/* Constants shared by the C core and the arch switch files (C and assembler:
 * #defines only): the verdicts of pc__switch_save and the size of the
 * register block.  The assembly reads no field of any struct. */
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

#endif
