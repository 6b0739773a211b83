/* chunks: a cache in front of CPython's arena allocator for data-stack
 * chunks (see chunks.c).  Calls pystate (its lock) and CPython; called by
 * fiber. */
#ifndef PYCORO_CHUNKS_H
#define PYCORO_CHUNKS_H

/* Install it (process-wide, idempotent). */
void pyc_chunk_cache_install(void);

#endif
