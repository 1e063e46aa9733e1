#ifndef SANDBOX_AUDIT_H
#define SANDBOX_AUDIT_H
/*
 * sandbox_audit.h — reading the kernel's audit records without enabling audit
 * (Docs/denials.md): the read-log multicast group of NETLINK_AUDIT, AUDIT_GET (read
 * only) and the supervisor's marker thread. Supervisor side only; never called
 * between clone3 and execve.
 */
#include <stdint.h>
#include <stddef.h>

/* A NETLINK_AUDIT socket bound to AUDIT_NLGRP_READLOG (group 1), its receive buffer
 * forced to `rcvbuf` bytes (SO_RCVBUFFORCE, else as large as SO_RCVBUF allows).
 * Returns the fd, or -errno (EPERM: no CAP_AUDIT_READ). */
int sbx_audit_open_reader(int rcvbuf);

/* AUDIT_GET (read only, changes nothing): kernel audit `enabled` (0, 1, 2 locked)
 * and the global `lost` counter. 0 or -errno. */
int sbx_audit_status(uint32_t *enabled, uint32_t *lost);
/* sbx_audit_status in two halves: the request (the kernel reads its state during
 * it; returns the socket or -errno) and, later, its reply (closes the socket). */
int sbx_audit_status_request(void);
int sbx_audit_status_reply(int fd, uint32_t *enabled, uint32_t *lost);

/* The marker thread: a thread of this process with a seccomp filter (FLAG_LOG) of
 * its own that answers one call, getpgid(token, SBX_AUDIT_MARKER_MAGIC), with
 * ERRNO(token & 0xffff) and lets everything else through. Each 2-byte token written
 * to the returned pipe end makes it fire once: an AUDIT_SECCOMP record with this
 * process's pid, syscall getpgid and code 0x50000|token, queued behind every record
 * emitted before it. Returns the write end, or -errno.
 *
 * Not waited for: the thread installs its filter while the caller goes on (waiting
 * for it to be scheduled cost a cold run up to a millisecond). `*ready` receives a
 * descriptor that sbx_audit_marker_ready reads the outcome from, before the first
 * token is written (the thread answers nothing until its filter is in). */
int sbx_audit_marker_start(int *ready);
/* The marker thread's outcome: 0 once its filter is in, or -errno (it is gone then:
 * write no token). Blocks until the thread has answered; closes `ready`. */
int sbx_audit_marker_ready(int ready);
#define SBX_AUDIT_MARKER_MAGIC 0x5b3a7d11u
/* The syscall number of the marker call on this architecture (its record's syscall=). */
int sbx_audit_marker_syscall(void);
/* The native AUDIT_ARCH_* value (a record's arch=). */
uint32_t sbx_audit_native_arch(void);

/* A detached thread running body(context) with every signal blocked (the reader). */
int sbx_audit_spawn_thread(void (*body)(void *), void *context);

#endif
