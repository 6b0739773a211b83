/* Constants shared by the C core and the arch switch files (C and assembler:
 * #defines only): the size of the register block.  The assembly reads no
 * field of any struct. */
#ifndef PYCORO_SWITCH_ABI_H
#define PYCORO_SWITCH_ABI_H

/* Size of the register block each switch stores (see the .S offset tables). */
#define PC_X86_64_FRAME_SIZE 0x40
#define PC_ARM64_FRAME_SIZE 0xa0

#endif
