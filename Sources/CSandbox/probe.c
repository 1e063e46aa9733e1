/*
 * probe.c — read-only kernel probes for `sandbox doctor` (see sandbox_probe.h).
 */
#define _GNU_SOURCE
#include "sandbox_probe.h"
#include "kernel_abi.h"   /* SYS_clone3, SYS_pidfd_send_signal, struct sbx_clone_args */
#include "sandbox_supervisor.h" /* sbx_harden_root */

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define SBX_PROBE_CLONE_PIDFD 0x00001000ULL
#define SBX_PROBE_CLONE_FILES 0x00000400ULL
#define SBX_PROBE_P_PIDFD 3
#ifndef SECCOMP_FILTER_FLAG_LOG
#define SECCOMP_FILTER_FLAG_LOG (1UL << 1)
#endif
#ifndef SECCOMP_FILTER_FLAG_NEW_LISTENER
#define SECCOMP_FILTER_FLAG_NEW_LISTENER (1UL << 3)
#endif
#ifndef AUDIT_NLGRP_READLOG
#define AUDIT_NLGRP_READLOG 1
#endif

/* In the child: raw syscalls only, then exit. */
static int probe_child(int action) {
    if (action == SBX_PROBE_EXIT) return 0;
    struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog prog = { .len = 1, .filter = &allow };
    if (syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return errno;
    unsigned long flags = action == SBX_PROBE_SECCOMP_LOG ? SECCOMP_FILTER_FLAG_LOG : SECCOMP_FILTER_FLAG_NEW_LISTENER;
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog) < 0) return errno;
    return 0;
}

int sbx_probe_clone3(uint64_t flags, int action, int *child_status, const char **step) {
    /* The probe is a copy of this process, uid 0 in a namespace root owns when the
     * caller is root: not dumpable, or a capability-less root could read it. */
    int hardened = sbx_harden_root();
    if (hardened < 0) { *step = "prctl(PR_SET_DUMPABLE)"; return hardened; }
    int pidfd = -1;
    struct sbx_clone_args args;
    memset(&args, 0, sizeof args);
    /* CLONE_FILES: the probe holds no copy of this process's descriptors, whose
     * close at its exit could wait for ever in a file's flush (a server client's
     * stdio on a FUSE mount that never answers: red team, session 28). */
    args.flags = flags | SBX_PROBE_CLONE_PIDFD | SBX_PROBE_CLONE_FILES;
    args.pidfd = (uint64_t)(uintptr_t)&pidfd;
    args.exit_signal = SIGCHLD;
    *step = "clone3";
    long pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid < 0) return -errno;
    if (pid == 0) syscall(SYS_exit_group, probe_child(action));
    int result = 0;
    if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0 && errno != ESRCH) {
        result = -errno;
        *step = "pidfd_send_signal";
    }
    siginfo_t si;
    memset(&si, 0, sizeof si);
    long r;
    while ((r = syscall(SYS_waitid, SBX_PROBE_P_PIDFD, pidfd, &si, WEXITED, NULL)) < 0 && errno == EINTR) {}
    if (r < 0) {
        int e = errno;
        /* Reap it by pid so nothing is left: waitid(P_PIDFD) is what failed. */
        while (waitpid((pid_t)pid, NULL, 0) < 0 && errno == EINTR) {}
        if (result == 0) { result = -e; *step = "waitid"; }
    } else {
        *child_status = si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
    }
    close(pidfd);
    return result;
}

static int audit_socket(void) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT);
    return fd < 0 ? -errno : fd;
}

int sbx_probe_audit_status(struct sbx_audit_status *out) {
    int fd = audit_socket();
    if (fd < 0) return fd;
    struct timeval tv = { .tv_sec = 2, .tv_usec = 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    struct nlmsghdr req;
    memset(&req, 0, sizeof req);
    req.nlmsg_len = NLMSG_LENGTH(0);
    req.nlmsg_type = AUDIT_GET;
    req.nlmsg_flags = NLM_F_REQUEST;
    req.nlmsg_seq = 1;
    if (sendto(fd, &req, req.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
        int e = errno; close(fd); return -e;
    }
    char buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));
    for (int tries = 0; tries < 16; tries++) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno; close(fd); return -e;
        }
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_seq != 1) continue;
            if (h->nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr *err = NLMSG_DATA(h);
                if (err->error != 0) { close(fd); return err->error; }
                continue;
            }
            if (h->nlmsg_type == AUDIT_GET) {
                struct audit_status st;
                memset(&st, 0, sizeof st);
                size_t len = h->nlmsg_len - NLMSG_LENGTH(0);
                memcpy(&st, NLMSG_DATA(h), len < sizeof st ? len : sizeof st);
                out->enabled = st.enabled;
                out->failure = st.failure;
                out->pid = st.pid;
                out->lost = st.lost;
                out->backlog = st.backlog;
                out->backlog_limit = st.backlog_limit;
                close(fd);
                return 0;
            }
        }
    }
    close(fd);
    return -EPROTO;
}

int sbx_probe_audit_readlog(void) {
    int fd = audit_socket();
    if (fd < 0) return fd;
    struct sockaddr_nl addr = { .nl_family = AF_NETLINK, .nl_groups = 1U << (AUDIT_NLGRP_READLOG - 1) };
    int r = bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 ? -errno : 0;
    close(fd);
    return r;
}

int sbx_probe_hard_rlimit(int resource, uint64_t *hard) {
    struct rlimit rl;
    if (getrlimit(resource, &rl) < 0) return -errno;
    *hard = rl.rlim_max == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_max;
    return 0;
}
