/*
 * sandbox_text_paging.h — map this process's code and data a page at a time.
 *
 * On a read fault in a file mapping the kernel maps up to 64 KiB around the page
 * ("fault-around"), and every page so mapped counts in the resident set. A cold
 * `sandbox exec` calls functions spread over ~80 such windows of the binary and libc,
 * so most of its peak RSS was code it never ran. A userfaultfd registered for
 * write-protect in asynchronous mode (Linux 6.7) turns fault-around off for the
 * ranges it covers and changes nothing else: no page is write-protected, no fault
 * waits for a reader. Docs/benchmarks.md (session 39) has the numbers.
 */
#ifndef SANDBOX_TEXT_PAGING_H
#define SANDBOX_TEXT_PAGING_H

#ifdef __cplusplus
extern "C" {
#endif

/* Registers every loaded object's PT_LOAD segments (the vDSO's excepted). Returns the
 * number of segments registered, or -errno when the kernel offers no asynchronous
 * write-protect userfaultfd (older than 6.7, or refused by an LSM), or -EPERM under
 * a seccomp filter (not tried: a filter may kill on it); the process then runs as
 * before. The descriptor is a capability to write into this process's memory
 * (UFFDIO_REGISTER and UFFDIO_COPY act on the memory of the process that made it,
 * whoever holds it): treat it like the seccomp listener. Close-on-exec and above
 * the standard three, stays open for the life of the process: closing it would undo
 * the registration. Children do not inherit the registration (no
 * UFFD_FEATURE_EVENT_FORK), and the sandbox's child closes the descriptor with every
 * other it does not keep. Called once, by a constructor of the `sandbox`
 * executable (text_paging.c), before the Swift runtime's own. */
int sbx_map_text_page_by_page(void);

/* After a dlopen: the objects loaded since are mapped a page at a time too. -EBADF
 * if sbx_map_text_page_by_page did not succeed in this process (a library's host
 * process never called it; a fork's copy of the descriptor is not used). */
int sbx_map_loaded_objects_page_by_page(void);

#ifdef __cplusplus
}
#endif

#endif
