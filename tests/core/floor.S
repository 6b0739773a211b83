/* The floor a switch is measured against (bench only, not pycoro's code):
 *   void fx_floor_swap(void **save_sp, void *load_sp)
 *   void fx_floor_swap_fp(void **save_sp, void *load_sp)
 * push the callee-saved registers, store sp to *save_sp, load load_sp, pop,
 * return: two contexts on separate stacks, nothing copied, no bookkeeping.
 * The _fp variant also reads the floating-point control state into its
 * frame, as a switch that keeps it per context must (read only: never
 * compared or written back).  fx_floor_start is a new context's first
 * return address: it calls fn(arg) from two callee-saved registers. */
#include "arch/asm_macros.h"
#if defined(__x86_64__)
#  include "floor_x86_64.S"
#elif defined(__aarch64__) || defined(__arm64__)
#  include "floor_arm64.S"
#else
#  error "no floor fixture for this target"
#endif
#if !defined(__APPLE__)
.section .note.GNU-stack,"",%progbits
#endif
