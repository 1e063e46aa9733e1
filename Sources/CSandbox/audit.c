/*
 * audit.c — the audit-record side of the denial account (see sandbox_audit.h,
 * Docs/denials.md). Nothing here enables or configures kernel audit: the reader only
 * joins the read-log multicast group, AUDIT_GET only reads the status.
 */
#define _GNU_SOURCE
#include "sandbox_audit.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef AUDIT_NLGRP_READLOG
#define AUDIT_NLGRP_READLOG 1
#endif
#ifndef SECCOMP_FILTER_FLAG_LOG
#define SECCOMP_FILTER_FLAG_LOG (1UL << 1)
#endif

#if defined(__x86_64__)
#define SBX_AUDIT_ARCH 0xC000003Eu /* AUDIT_ARCH_X86_64 */
#elif defined(__aarch64__)
#define SBX_AUDIT_ARCH 0xC00000B7u /* AUDIT_ARCH_AARCH64 */
#else
#error "add this architecture's AUDIT_ARCH value"
#endif

uint32_t sbx_audit_native_arch(void) { return SBX_AUDIT_ARCH; }
int sbx_audit_marker_syscall(void) { return SYS_getpgid; }

int sbx_audit_open_reader(int rcvbuf) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT);
    if (fd < 0) return -errno;
    /* Before bind: nothing may arrive into a small buffer. Seccomp records are never
     * dropped by the kernel, but a full socket loses them (ENOBUFS on recv). */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_nl addr;
    memset(&addr, 0, sizeof addr);
    addr.nl_family = AF_NETLINK;
    addr.nl_groups = 1u << (AUDIT_NLGRP_READLOG - 1);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int sbx_audit_status_request(void) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT);
    if (fd < 0) return -errno;
    struct { struct nlmsghdr h; } req;
    memset(&req, 0, sizeof req);
    req.h.nlmsg_len = sizeof req;
    req.h.nlmsg_type = AUDIT_GET;
    req.h.nlmsg_flags = NLM_F_REQUEST;
    req.h.nlmsg_seq = 1;
    struct sockaddr_nl kernel;
    memset(&kernel, 0, sizeof kernel);
    kernel.nl_family = AF_NETLINK;
    struct timeval tv = { 1, 0 };
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    /* The kernel reads its state here, in this call (audit_receive runs in the
     * sender's context); only the reply is sent later, from a thread of its own. */
    if (sendto(fd, &req, sizeof req, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
        int e = errno; close(fd); return -e;
    }
    return fd;
}

int sbx_audit_status_reply(int fd, uint32_t *enabled, uint32_t *lost) {
    char buf[8192] __attribute__((aligned(8)));
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0) { int e = errno; if (e == EINTR) continue; close(fd); return -e; }
        struct nlmsghdr *h = (struct nlmsghdr *)buf;
        for (; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr *err = NLMSG_DATA(h);
                if (err->error != 0) { close(fd); return err->error; }
                continue;
            }
            if (h->nlmsg_type == AUDIT_GET && h->nlmsg_len >= NLMSG_LENGTH(offsetof(struct audit_status, lost) + 4)) {
                struct audit_status *s = NLMSG_DATA(h);
                *enabled = s->enabled;
                *lost = s->lost;
                close(fd);
                return 0;
            }
        }
    }
}

int sbx_audit_status(uint32_t *enabled, uint32_t *lost) {
    int fd = sbx_audit_status_request();
    return fd < 0 ? fd : sbx_audit_status_reply(fd, enabled, lost);
}

/* The marker filter (classic BPF; struct seccomp_data: nr @0, arch @4, args @16):
 *   native arch, getpgid, low half of a1 == MAGIC → RET (ERRNO | a0 & 0xffff)
 *   anything else → ALLOW */
static int install_marker_filter(void) {
    const uint32_t a0 = offsetof(struct seccomp_data, args[0]);
    const uint32_t a1 = offsetof(struct seccomp_data, args[1]);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    const uint32_t lo = 4;
#else
    const uint32_t lo = 0;
#endif
    struct sock_filter code[] = {
        /* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        /* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SBX_AUDIT_ARCH, 0, 8),
        /* 2 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        /* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getpgid, 0, 6),
        /* 4 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, a1 + lo),
        /* 5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SBX_AUDIT_MARKER_MAGIC, 0, 4),
        /* 6 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, a0 + lo),
        /* 7 */ BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xffff),
        /* 8 */ BPF_STMT(BPF_ALU | BPF_OR | BPF_K, SECCOMP_RET_ERRNO),
        /* 9 */ BPF_STMT(BPF_RET | BPF_A, 0),
        /* 10 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { sizeof code / sizeof code[0], code };
    /* This thread only (no TSYNC), and it never forks or execs: no_new_privs on it
     * changes nothing else and lets the filter load without CAP_SYS_ADMIN. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return -errno;
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_LOG, &prog) < 0) return -errno;
    return 0;
}

struct marker_start { int pipe_read; int ready; };

/* The supervisor's threads block the signals it forwards (signalfd) on the run's
 * thread only; a thread of ours that did not block them would take a
 * process-directed SIGINT with its default action and end the supervisor. */
static void block_all_signals(void) {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
}

static void *marker_thread(void *arg) {
    block_all_signals();
    struct marker_start start = *(struct marker_start *)arg;
    free(arg);
    int rc = install_marker_filter();
    (void)!write(start.ready, &rc, sizeof rc);
    close(start.ready);
    if (rc < 0) { close(start.pipe_read); return NULL; }
    for (;;) {
        uint16_t token;
        ssize_t n = read(start.pipe_read, &token, sizeof token);
        if (n == sizeof token) { syscall(SYS_getpgid, (long)token, (long)SBX_AUDIT_MARKER_MAGIC); continue; }
        if (n < 0 && errno == EINTR) continue;
        close(start.pipe_read);
        return NULL;
    }
}

int sbx_audit_marker_start(int *ready) {
    int p[2], r[2];
    if (pipe2(p, O_CLOEXEC) < 0) return -errno;
    if (pipe2(r, O_CLOEXEC) < 0) { int e = errno; close(p[0]); close(p[1]); return -e; }
    struct marker_start *start = malloc(sizeof *start);
    if (!start) { close(p[0]); close(p[1]); close(r[0]); close(r[1]); return -ENOMEM; }
    start->pipe_read = p[0];
    start->ready = r[1];
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int e = pthread_create(&t, &attr, marker_thread, start);
    pthread_attr_destroy(&attr);
    if (e != 0) { free(start); close(p[0]); close(p[1]); close(r[0]); close(r[1]); return -e; }
    *ready = r[0];
    return p[1];
}

int sbx_audit_marker_ready(int ready) {
    int rc = -EIO;
    while (read(ready, &rc, sizeof rc) < 0 && errno == EINTR) {}
    close(ready);
    return rc;
}

struct thread_start { void (*body)(void *); void *context; };

static void *thread_main(void *arg) {
    block_all_signals();
    struct thread_start start = *(struct thread_start *)arg;
    free(arg);
    start.body(start.context);
    return NULL;
}

int sbx_audit_spawn_thread(void (*body)(void *), void *context) {
    struct thread_start *start = malloc(sizeof *start);
    if (!start) return -ENOMEM;
    start->body = body;
    start->context = context;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int e = pthread_create(&t, &attr, thread_main, start);
    pthread_attr_destroy(&attr);
    if (e != 0) { free(start); return -e; }
    return 0;
}
