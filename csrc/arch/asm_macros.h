/* One place for the differences between ELF (Linux) and Mach-O (macOS)
 * assemblers.  One statement per macro: Apple's arm64 assembler reads ';'
 * as a comment, so statements are never chained on one line.
 *
 *   ELF:    plain symbol names, .hidden, .type/.size, a GNU-stack note
 *           (the stack is not executable).
 *   Mach-O: '_' prefix, .private_extern, no .type/.size/notes.
 */
#ifndef PYCORO_ASM_MACROS_H
#define PYCORO_ASM_MACROS_H

#if defined(__APPLE__)
#  define PC_SYM(name) _##name
#  define PC_HIDDEN_SYM(name) .private_extern _##name
#  define PC_TYPE_FUNCTION(name)
#  define PC_SIZE(name)
#else
#  define PC_SYM(name) name
#  define PC_HIDDEN_SYM(name) .hidden name
#  define PC_TYPE_FUNCTION(name) .type name, %function
#  define PC_SIZE(name) .size name, .-name
#endif

#endif
