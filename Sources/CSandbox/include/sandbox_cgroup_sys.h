#ifndef SANDBOX_CGROUP_SYS_H
#define SANDBOX_CGROUP_SYS_H

/* Raw syscalls the cgroup facility needs that Swift cannot reach: the libc here
 * (glibc 2.36 on Debian 12) ships no <sys/pidfd.h>, and Swift cannot call the
 * variadic syscall(2). Each returns what the syscall returns (-1 and errno). */

#include <signal.h>

/* pidfd_open(2) with flags 0: a pidfd (O_CLOEXEC is implied by the kernel). */
int sbx_cg_pidfd_open(int pid);

/* Signalling goes through sbx_pidfd_send_signal (sandbox_supervisor.h). */

#endif
