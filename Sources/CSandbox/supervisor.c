/* See sandbox_supervisor.h. Runs in the supervisor, around the child it spawned. */
#define _GNU_SOURCE
#include "sandbox_supervisor.h"
#include "kernel_abi.h" /* SYS_clone3, struct sbx_clone_args */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define SBX_P_PIDFD 3

int sbx_pidfd_send_signal(int pidfd, int sig) {
    return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) == 0 ? 0 : -errno;
}

int sbx_pidfd_wait(int pidfd, int *code, int *status, struct rusage *usage) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    long r;
    do { r = syscall(SYS_waitid, SBX_P_PIDFD, pidfd, &si, WEXITED, usage); } while (r < 0 && errno == EINTR);
    if (r < 0) return -errno;
    *code = si.si_code;
    *status = si.si_status;
    return 0;
}

int sbx_recv_fd(int sock) {
    char byte;
    struct iovec iov = { &byte, 1 };
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
    memset(&u, 0, sizeof u);
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
    ssize_t n;
    do { n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); } while (n < 0 && errno == EINTR);
    if (n <= 0) return -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

int sbx_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC) == 0 ? 0 : -errno;
}

int sbx_signalfd(const sigset_t *mask) {
    int fd = signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK);
    return fd < 0 ? -errno : fd;
}

int sbx_signalfd_next(int fd) {
    struct signalfd_siginfo si;
    ssize_t n;
    do { n = read(fd, &si, sizeof si); } while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof si ? (int)si.ssi_signo : -1;
}

int sbx_affinity_get(sbx_cpumask *mask) {
    memset(mask, 0, sizeof *mask);
    return sched_getaffinity(0, sizeof *mask, (cpu_set_t *)mask) == 0 ? 0 : -errno;
}

int sbx_affinity_set(const sbx_cpumask *mask) {
    return sched_setaffinity(0, sizeof *mask, (const cpu_set_t *)mask) == 0 ? 0 : -errno;
}

int sbx_affinity_pin_here(void) {
    int cpu = sched_getcpu();
    if (cpu < 0 || cpu >= (int)(sizeof(sbx_cpumask) * 8)) return -EINVAL;
    sbx_cpumask one;
    memset(&one, 0, sizeof one);
    one.bits[cpu / (8 * sizeof(unsigned long))] = 1UL << (cpu % (8 * sizeof(unsigned long)));
    return sbx_affinity_set(&one);
}

int sbx_set_thread_name(const char *name) {
    return prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0) < 0 ? -errno : 0;
}

/* Set once, never cleared: sbx_spawn puts back "not dumpable" after its euid change
 * whatever it found before. */
static _Atomic int undumpable;
/* Held while an idmap helper lives and across sbx_spawn's euid change, which makes
 * the process dumpable for a moment where fs.suid_dumpable is 1. */
static pthread_mutex_t dumpable_lock = PTHREAD_MUTEX_INITIALIZER;

int sbx_harden_root(void) {
    if (geteuid() != 0) return 0;
    undumpable = 1;
    return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 ? -errno : 0;
}

int sbx_is_hardened(void) { return undumpable; }
void sbx_dumpable_lock(void) { pthread_mutex_lock(&dumpable_lock); }
void sbx_dumpable_unlock(void) { pthread_mutex_unlock(&dumpable_lock); }

long sbx_copy_process(int *pidfd) {
    struct sbx_clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = pidfd ? CLONE_PIDFD : 0;
    args.pidfd = (uint64_t)(uintptr_t)pidfd;
    args.exit_signal = SIGCHLD;
    sbx_dumpable_lock();
    long pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid == 0) {
        /* One thread here, and the lock its copy of memory holds is the caller's,
         * taken above: free it for this process's own use. */
        pthread_mutex_init(&dumpable_lock, NULL);
        return 0;
    }
    int e = errno;
    sbx_dumpable_unlock();
    return pid < 0 ? -e : pid;
}
