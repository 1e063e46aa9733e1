#define _GNU_SOURCE
#include "sandbox_cgroup_sys.h"

#include <sys/syscall.h>
#include <unistd.h>

/* Numbers are the same on x86_64 and aarch64 (asm-generic); older headers may lack
 * the names. */
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

int sbx_cg_pidfd_open(int pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int sbx_cg_pidfd_send_signal(int pidfd, int sig) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, (void *)0, 0);
}
