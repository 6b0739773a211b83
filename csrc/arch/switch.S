/* Picks the one switch implementation for the target; nothing else. */
#if defined(__x86_64__) && !defined(_WIN32)
#  include "switch_x86_64_sysv.S"
#elif defined(__aarch64__) || defined(__arm64__)
#  include "switch_arm64_aapcs.S"
#else
#  error "pycoro: no context switch for this target (x86-64 System V and ARM64 AAPCS64 only)"
#endif

#if !defined(__APPLE__)
/* The stack is not executable.  There is deliberately no GNU property note:
 * a stack-copying switch cannot run under a CET shadow stack (the returns it
 * makes do not match the calls the shadow stack saw), so this object must
 * not be marked shadow-stack compatible, which keeps the linked module
 * unmarked too. */
.section .note.GNU-stack,"",%progbits
#endif
