/*
 * image.c — the executable's own image in memory (sandbox_image.h).
 *
 * Why: a PIE Swift binary carries ~48 000 relative relocations, a 1.1 MiB table
 * the loader reads once at start-up; its pages then stay mapped, and counted in the
 * supervisor's resident set, for the whole run (issue 16, peak RSS).
 */
#define _GNU_SOURCE
#include "sandbox_image.h"

#include <errno.h>
#include <link.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef DT_RELR
#define DT_RELR 36
#define DT_RELRSZ 35
#endif

struct search {
    struct sbx_image_range *out;
    int count;
};

/* glibc (elf_get_dynamic_info) rewrites the address entries of a writable dynamic
 * section to run-time addresses before main; a read-only one keeps link-time
 * offsets. The same rule here, by the PT_DYNAMIC segment's own flags. */
static uintptr_t absolute(ElfW(Addr) base, int dynamic_writable, ElfW(Addr) value) {
    return dynamic_writable ? (uintptr_t)value : (uintptr_t)(base + value);
}

static int in_read_only_load(const struct dl_phdr_info *info, uintptr_t start, uintptr_t end) {
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD) continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (start >= lo && end <= hi) return (ph->p_flags & PF_W) == 0;
    }
    return 0;
}

static int search_first(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    struct search *search = data;
    const ElfW(Dyn) *dynamic = NULL;
    int writable = 0;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_DYNAMIC) {
            dynamic = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
            writable = (info->dlpi_phdr[i].p_flags & PF_W) != 0;
        }
    if (!dynamic) return 1;
    uintptr_t tables[2][2] = {{0, 0}, {0, 0}}; /* {address, size} of RELA, RELR */
    for (const ElfW(Dyn) *d = dynamic; d->d_tag != DT_NULL; d++) {
        switch (d->d_tag) {
        case DT_RELA: tables[0][0] = absolute(info->dlpi_addr, writable, d->d_un.d_ptr); break;
        case DT_RELASZ: tables[0][1] = d->d_un.d_val; break;
        case DT_RELR: tables[1][0] = absolute(info->dlpi_addr, writable, d->d_un.d_ptr); break;
        case DT_RELRSZ: tables[1][1] = d->d_un.d_val; break;
        /* Text relocations: the loader wrote into read-only pages; leave them. */
        case DT_TEXTREL: return 1;
        case DT_FLAGS: if (d->d_un.d_val & DF_TEXTREL) return 1; break;
        default: break;
        }
    }
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    for (int t = 0; t < 2; t++) {
        uintptr_t start = (tables[t][0] + page - 1) & ~(page - 1);
        uintptr_t end = (tables[t][0] + tables[t][1]) & ~(page - 1);
        if (!tables[t][0] || end <= start) continue;
        if (!in_read_only_load(info, tables[t][0], tables[t][0] + tables[t][1])) continue;
        search->out[search->count++] = (struct sbx_image_range){start, end - start};
    }
    return 1; /* the executable is the first object; stop there */
}

int sbx_relocation_pages(struct sbx_image_range out[2]) {
    struct search search = {out, 0};
    dl_iterate_phdr(search_first, &search);
    return search.count;
}

long sbx_release_relocation_pages(void) {
    struct sbx_image_range ranges[2];
    int count = sbx_relocation_pages(ranges);
    long released = 0;
    for (int i = 0; i < count; i++) {
        /* Read-only, never written: dropping the mapping loses nothing. */
        if (madvise((void *)ranges[i].start, ranges[i].length, MADV_DONTNEED) != 0) return -errno;
        released += (long)ranges[i].length;
    }
    return released;
}
