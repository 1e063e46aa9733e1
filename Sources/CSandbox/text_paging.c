/* Fault-around off for this process's loaded objects (sandbox_text_paging.h). */
#define _GNU_SOURCE
#include "sandbox_text_paging.h"

#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <linux/userfaultfd.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif

static int paging_fd = -1;
/* The process that made it: a fork's copy of paging_fd names another descriptor, or
 * this one on the parent's memory. */
static pid_t paging_owner = 0;

/* The first and last functions of Linking/text-order.txt: between them gold lays out
 * what a cold run calls, in the order it calls it, so every page there is used and
 * fault-around maps little it would not. That block is left out of the
 * registration: a cold `exec strict` took 1 256 faults and 11.7 ms of CPU with it
 * in, 1 000 and 10.0 ms without (as without any registration), for 0.2 MiB more
 * resident (perf stat, Docs/benchmarks.md, session 39). Distinct bodies, so
 * that no folding of identical code gives them one address. */
__attribute__((noinline, used)) int sbx_text_order_first(void) { return 1; }
__attribute__((noinline, used)) int sbx_text_order_last(void) { return 2; }

static int register_range(unsigned long start, unsigned long end) {
    if (end <= start) return 0;
    struct uffdio_register reg = {
        .range = { .start = start, .len = end - start },
        .mode = UFFDIO_REGISTER_MODE_WP,
    };
    return ioctl(paging_fd, UFFDIO_REGISTER, &reg) == 0;
}

static int register_segments(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    int *registered = data;
    /* The vDSO is a special mapping: no userfaultfd, and nothing to page in. */
    if (info->dlpi_name != NULL && strncmp(info->dlpi_name, "linux-vdso", 10) == 0) return 0;
    unsigned long first = (unsigned long)&sbx_text_order_first & ~4095UL;
    unsigned long last = ((unsigned long)&sbx_text_order_last + 4095UL) & ~4095UL;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || ph->p_memsz == 0) continue;
        unsigned long start = (info->dlpi_addr + ph->p_vaddr) & ~4095UL;
        unsigned long end = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + 4095UL) & ~4095UL;
        /* A segment the kernel will not register (a special mapping, a hole) keeps
         * fault-around; the others are still worth it. */
        if (first >= start && last <= end && first < last) {
            *registered += register_range(start, first) + register_range(last, end);
        } else {
            *registered += register_range(start, end);
        }
    }
    return 0;
}

/* Registers every loaded object's segments; one already registered is registered
 * again, which changes nothing. */
static int register_all(void) {
    int registered = 0;
    dl_iterate_phdr(register_segments, &registered);
    return registered;
}

int sbx_map_text_page_by_page(void) {
    if (paging_fd >= 0) return -EALREADY;
    /* Not under a seccomp filter: one that kills on userfaultfd (a policy's
     * on_violation = "kill" around a nested sandbox, a unit's SystemCallFilter)
     * would end the process for a memory saving, and one that logs would report a
     * violation the command never made. */
    if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 0) return -EPERM;
    /* User-mode only: no privilege needed (vm.unprivileged_userfaultfd). With
     * write-protect alone in asynchronous mode no fault is ever handed to a reader,
     * so the kernel's own accesses (read(2) into a static buffer) are unaffected. */
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
    if (fd < 0) return -errno;
    /* Above the standard three even if one was closed when we started, so that
     * nothing later writes its output into this descriptor. */
    if (fd < 3) {
        int high = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        int saved = errno;
        close(fd);
        if (high < 0) return -saved;
        fd = high;
    }
    struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC };
    if (ioctl(fd, UFFDIO_API, &api) < 0) {
        int saved = errno;
        close(fd);
        return -saved;
    }
    paging_fd = fd;
    paging_owner = getpid();
    int registered = register_all();
    if (registered == 0) {
        paging_fd = -1;
        close(fd);
        return -ENOENT;
    }
    return registered;
}

int sbx_map_loaded_objects_page_by_page(void) {
    return paging_fd < 0 || paging_owner != getpid() ? -EBADF : register_all();
}

/* Before the Swift runtime's, libdispatch's and libstdc++'s static constructors (a
 * priority runs before the default ones of the executable): what they touch is
 * mapped page by page too: a cold run's peak RSS 6.2 -> 5.2 MiB, an egress run's
 * 8.2 -> 7.4 MiB (called from main, it was later). Only in the `sandbox`
 * executable, whose `main` is SwiftPM's entry point of the `sandbox` module,
 * `sandbox_main`, under a second name. The test bundle links the same module but
 * has the test runner's `main`, and a harness linking SandboxKit has no
 * `sandbox_main`: neither is touched. Both are weak, so that a library loaded
 * where neither resolves still loads. */
extern int main(int, char **) __attribute__((weak));
extern int sandbox_main(int, char **) __attribute__((weak));

__attribute__((constructor(101))) static void map_sandbox_page_by_page(void) {
    if (sandbox_main != NULL && sandbox_main == main) (void)sbx_map_text_page_by_page();
}

