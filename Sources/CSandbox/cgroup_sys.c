#define _GNU_SOURCE
#include "sandbox_cgroup_sys.h"

#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Numbers are the same on x86_64 and aarch64 (asm-generic); older headers may lack
 * the names. */
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
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

/* struct clone_args up to `cgroup` (CLONE_ARGS_SIZE_VER2, Linux 5.7). Declared here
 * because older <linux/sched.h> lack the field. */
struct sbx_cg_clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size,
        tls, set_tid, set_tid_size, cgroup;
};


