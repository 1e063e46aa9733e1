/*
 * sandbox_image.h — the executable's own image in memory.
 */
#ifndef SANDBOX_IMAGE_H
#define SANDBOX_IMAGE_H

#ifdef __cplusplus
extern "C" {
#endif

#include <stdint.h>

/* A page-aligned range of the executable's image in memory. */
struct sbx_image_range {
    uintptr_t start;
    uintptr_t length;
};

/* The whole pages of the executable's relocation tables (DT_RELA, DT_RELR) that
 * lie in a read-only segment of a binary without text relocations: at most two
 * ranges in out[0..1]. Returns how many (0 if none, e.g. a static binary). */
int sbx_relocation_pages(struct sbx_image_range out[2]);

/* Unmaps from this process the pages of the executable's relocation table
 * (DT_RELA/DT_RELR): the loader reads them once, before main, and nothing reads
 * them again (lazy binding uses DT_JMPREL, which stays). Only whole pages that lie
 * in a read-only segment of a binary without text relocations, so no page a write
 * changed is dropped; a later read would fault the file's bytes back in. The
 * pages stay in the page cache (shared, and charged to the memory cgroup as
 * before): what shrinks is this process's resident set. Returns the bytes
 * released, 0 when there is nothing to release, or -errno (a second table may then
 * still be mapped; nothing else changes). */
long sbx_release_relocation_pages(void);

#ifdef __cplusplus
}
#endif

#endif
