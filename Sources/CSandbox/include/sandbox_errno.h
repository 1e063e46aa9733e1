/*
 * sandbox_errno.h — the symbolic name of an errno value ("ENOENT"), for errors a
 * program reads (RunResult.error.errnoName). glibc's strerrorname_np is declared
 * only under _GNU_SOURCE, which Swift's Glibc module does not define.
 */
#ifndef SANDBOX_ERRNO_H
#define SANDBOX_ERRNO_H

#ifdef __cplusplus
extern "C" {
#endif

/* strerrorname_np(err): "ENOENT" for 2; NULL for a value glibc has no name for. */
const char *sbx_errno_name(int err);

#ifdef __cplusplus
}
#endif

#endif
