/* uint64_t fx_regs_roundtrip(pc_fiber *target, uint64_t seed, uint64_t *out)
 * Fills every callee-saved register with a value derived from `seed`, calls
 * pc_switch(target), and stores what the registers hold afterwards into
 * out[].  Main and the fiber both call it with different seeds, so each side
 * sees its own values only if the switch preserved them. */
#include "arch/asm_macros.h"
#if defined(__x86_64__)
#  include "regcheck_x86_64.S"
#elif defined(__aarch64__) || defined(__arm64__)
#  include "regcheck_arm64.S"
#else
#  error "no register check fixture for this target"
#endif
#if !defined(__APPLE__)
.section .note.GNU-stack,"",%progbits
#endif
