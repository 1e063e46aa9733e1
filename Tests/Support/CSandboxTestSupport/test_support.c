#define _GNU_SOURCE
#include "sandbox_test_support.h"
#include "sandbox_supervisor.h" /* sbx_recv_fd */
#include "sandbox_mounts.h"   /* sbx_mounts_spawn_userns_helper */
#include "sandbox_probe.h"    /* sbx_probe_clone3 */

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <seccomp.h> /* macros only: SCMP_ACT_ERRNO, SCMP_ACT_TRACE */

/* ---- TEST SUPPORT ONLY ---------------------------------------------------- */

/* Runs one probe; returns 0 on success or the errno. Async-signal-safe. */
static int run_probe(int probe, const char *path, uint16_t port) {
    long rc = 0;
    switch (probe) {
    case SBX_FENCE_PROBE_NONE:
        return 0;
    case SBX_FENCE_PROBE_PTRACE_TRACEME:
        rc = syscall(SYS_ptrace, PTRACE_TRACEME, 0x1111, 0x2222, 0x3333);
        break;
    case SBX_FENCE_PROBE_SOCKET_UNIX:
    case SBX_FENCE_PROBE_SOCKET_INET:
    case SBX_FENCE_PROBE_SOCKET_INET6:
    case SBX_FENCE_PROBE_SOCKET_NETLINK:
    case SBX_FENCE_PROBE_SOCKET_PACKET:
    case SBX_FENCE_PROBE_SOCKET_NETLINK_HIGH: {
        /* Raw syscall: the a0 the filter sees is exactly the one given here. */
        static const struct { int probe; unsigned long family; int type; } sockets[] = {
            {SBX_FENCE_PROBE_SOCKET_UNIX, AF_UNIX, SOCK_STREAM},
            {SBX_FENCE_PROBE_SOCKET_INET, AF_INET, SOCK_STREAM},
            {SBX_FENCE_PROBE_SOCKET_INET6, AF_INET6, SOCK_STREAM},
            {SBX_FENCE_PROBE_SOCKET_NETLINK, AF_NETLINK, SOCK_RAW},
            {SBX_FENCE_PROBE_SOCKET_PACKET, AF_PACKET, SOCK_RAW},
            {SBX_FENCE_PROBE_SOCKET_NETLINK_HIGH, (1UL << 32) | AF_NETLINK, SOCK_RAW},
        };
        for (size_t i = 0; i < sizeof sockets / sizeof sockets[0]; i++) {
            if (sockets[i].probe == probe) rc = syscall(SYS_socket, sockets[i].family, sockets[i].type, 0);
        }
        break;
    }
#if defined(__x86_64__)
    case SBX_FENCE_PROBE_X32_GETPID:
        rc = syscall(0x40000000 | 39);
        break;
    case SBX_FENCE_PROBE_I386_GETPID: {
        long ret;
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory", "cc");
        if (ret < 0) return (int)-ret;
        return 0;
    }
#endif
    case SBX_FENCE_PROBE_OPEN_READ:
        rc = open(path, O_RDONLY | O_CLOEXEC);
        break;
    case SBX_FENCE_PROBE_OPEN_WRITE:
        rc = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        break;
    case SBX_FENCE_PROBE_MKDIR:
        rc = mkdir(path, 0700);
        break;
    case SBX_FENCE_PROBE_CONNECT_TCP: {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0) return errno;
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_port = htons(port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        rc = connect(s, (struct sockaddr *)&sa, sizeof sa);
        int saved = errno;
        close(s);
        errno = saved;
        break;
    }
    case SBX_FENCE_PROBE_SIGNAL_PARENT:
        rc = kill(getppid(), 0);
        break;
    case SBX_FENCE_PROBE_UNKNOWN_NR:
        rc = syscall(100000, 0x1111);
        break;
    case SBX_FENCE_PROBE_GAP_NR:
#if defined(__x86_64__)
        rc = syscall(400, 0x1111);
        break;
#else
        return ENOSYS;
#endif
    default:
        return EINVAL;
    }
    return rc < 0 ? errno : 0;
}

static void probe_and_exit(int probe, int repeat, const char *path, uint16_t port) {
    int first = run_probe(probe, path, port);
    for (int i = 1; i < repeat; i++) {
        if (run_probe(probe, path, port) != first) _exit(SBX_FENCE_TEST_EXIT_MIXED);
    }
    _exit(first);
}

static int install_filter(const void *filter, size_t len, unsigned int flags) {
    struct sock_fprog prog = {
        .len = (unsigned short)(len / sizeof(struct sock_filter)),
        .filter = (struct sock_filter *)filter,
    };
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

int sbx_fence_test_wait(pid_t pid) {
    int status;
    for (;;) {
        if (waitpid(pid, &status, 0) == pid) return status;
        if (errno != EINTR) return -1;
    }
}

int sbx_fence_test_probe_seccomp(const void *filter, size_t len, unsigned int flags,
                                 int probe, int repeat) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(SBX_FENCE_TEST_EXIT_NNP);
        if (len > 0 && install_filter(filter, len, flags) < 0) _exit(SBX_FENCE_TEST_EXIT_FENCE);
        probe_and_exit(probe, repeat, NULL, 0);
    }
    return sbx_fence_test_wait(pid);
}

int sbx_fence_test_spawn_notify(const void *filter, size_t len, int probe, int repeat,
                                pid_t *pid_out) {
    int sv[2];
    *pid_out = -1;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (pid == 0) {
        close(sv[0]);
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(SBX_FENCE_TEST_EXIT_NNP);
        int listener = install_filter(filter, len, SECCOMP_FILTER_FLAG_NEW_LISTENER);
        if (listener < 0) _exit(SBX_FENCE_TEST_EXIT_FENCE);
        char byte = 'L';
        struct iovec iov = {.iov_base = &byte, .iov_len = 1};
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } control;
        memset(&control, 0, sizeof control);
        struct msghdr msg = {
            .msg_iov = &iov, .msg_iovlen = 1,
            .msg_control = control.buf, .msg_controllen = sizeof control.buf,
        };
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &listener, sizeof(int));
        if (sendmsg(sv[1], &msg, MSG_NOSIGNAL) != 1) _exit(SBX_FENCE_TEST_EXIT_SEND);
        close(listener);
        close(sv[1]);
        probe_and_exit(probe, repeat, NULL, 0);
    }
    *pid_out = pid;
    close(sv[1]);
    int fd = sbx_recv_fd(sv[0]); /* the executor's own receive path (child.c) */
    int saved = errno;
    close(sv[0]);
    errno = saved;
    return fd;
}

int sbx_fence_test_probe_landlock(int ruleset_fd, int probe, const char *path, uint16_t port) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(SBX_FENCE_TEST_EXIT_NNP);
        if (syscall(__NR_landlock_restrict_self, ruleset_fd, 0) != 0) _exit(SBX_FENCE_TEST_EXIT_FENCE);
        probe_and_exit(probe, 1, path, port);
    }
    return sbx_fence_test_wait(pid);
}

/* ---- cgroup: a child born in a cgroup (CLONE_INTO_CGROUP) ---- */

struct sbx_test_clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
        set_tid, set_tid_size, cgroup;
};

int sbx_cg_clone_into_paused(int cgroup_fd) {
    struct sbx_test_clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = 0x200000000ULL;
    args.exit_signal = SIGCHLD;
    args.cgroup = (uint64_t)cgroup_fd;
    long pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid == 0) {
        /* The child of a (possibly multi-threaded) process: async-signal-safe only. */
        for (;;) pause();
    }
    return (int)pid;
}

/* A process that starts the idmap helper (sbx_mounts_spawn_userns_helper) and dies
 * at once, the way a supervisor SIGKILLed between that clone and its own kill of the
 * helper does. Returns a pidfd of the helper (the caller checks that it ends), or
 * -errno. */
int sbx_test_orphaned_userns_helper(void) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) return -errno;
    pid_t creator = fork();
    if (creator < 0) { int e = errno; close(p[0]); close(p[1]); return -e; }
    if (creator == 0) {
        static _Alignas(16) char stack[16384];
        int pidfd = -1;
        int pid = sbx_mounts_spawn_userns_helper(stack + sizeof stack, &pidfd);
        (void)!write(p[1], &pid, sizeof pid);
        _exit(0);
    }
    close(p[1]);
    int pid = -1;
    ssize_t n = read(p[0], &pid, sizeof pid);
    close(p[0]);
    int status;
    while (waitpid(creator, &status, 0) < 0 && errno == EINTR) {}
    if (n != (ssize_t)sizeof pid) return -EIO;
    if (pid < 0) return pid;
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    /* Gone already (reaped by its new parent): that is the outcome the test wants. */
    if (fd < 0) return errno == ESRCH ? -ESRCH : -errno;
    return fd;
}

/* The red team's attack on the idmap helper (session 27): a process stands in for
 * the supervisor (not dumpable when `undumpable`), starts the helper and waits; a
 * uid-0 process with no capability at all then opens the helper's memory — the
 * stand-in's — read-write. Returns 0 when it could (the attack works), else the
 * errno of the refusal; -errno when the set-up failed. */
int sbx_test_open_helper_memory(int undumpable) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) return -errno;
    pid_t sup = fork();
    if (sup < 0) { int e = errno; close(p[0]); close(p[1]); return -e; }
    if (sup == 0) {
        /* Explicitly either way: a fork inherits the test process's flag, which an
         * in-process root run has cleared. */
        if (prctl(PR_SET_DUMPABLE, undumpable ? 0 : 1, 0, 0, 0) < 0) _exit(1);
        static _Alignas(16) char stack[16384];
        int pidfd = -1;
        int pid = sbx_mounts_spawn_userns_helper(stack + sizeof stack, &pidfd);
        (void)!write(p[1], &pid, sizeof pid);
        for (;;) pause();
    }
    close(p[1]);
    int helper = -1;
    ssize_t n = read(p[0], &helper, sizeof helper);
    close(p[0]);
    int result;
    if (n != (ssize_t)sizeof helper) result = -EIO;
    else if (helper < 0) result = helper;
    else {
        pid_t attacker = fork();
        if (attacker == 0) {
            struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
            struct __user_cap_data_struct d[2];
            memset(d, 0, sizeof d);
            if (syscall(SYS_capset, &h, d) < 0) _exit(254);
            char path[64];
            snprintf(path, sizeof path, "/proc/%d/mem", helper);
            int fd = open(path, O_RDWR | O_CLOEXEC);
            _exit(fd >= 0 ? 0 : (errno & 0xff));
        }
        int st = 0;
        while (attacker > 0 && waitpid(attacker, &st, 0) < 0 && errno == EINTR) {}
        result = attacker < 0 ? -errno : !WIFEXITED(st) ? -ECHILD : WEXITSTATUS(st) == 254 ? -EPERM : WEXITSTATUS(st);
    }
    kill(sup, SIGKILL); /* our own child; the helper dies with it (PDEATHSIG) */
    int st;
    while (waitpid(sup, &st, 0) < 0 && errno == EINTR) {}
    return result;
}

int sbx_test_dumpable(void) {
    return prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
}

/* In a fork that starts dumpable: `which` 0 makes an idmap user namespace
 * (sbx_mounts_make_userns), 1 runs the namespace probe (sbx_probe_clone3), as
 * `doctor`, `explain` and a plan for `namespaces-or-nested` do before any run. Returns
 * the fork's dumpable flag afterwards (0: hardened), or -errno. */
int sbx_test_dumpable_after(int which) {
    pid_t pid = fork();
    if (pid < 0) return -errno;
    if (pid == 0) {
        if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0) _exit(100);
        if (which == 0) {
            int fd = sbx_mounts_make_userns("0 1879047999 1\n", "0 1879047999 1\n");
            if (fd < 0) _exit(101);
            close(fd);
        } else {
            int status = 0;
            const char *step = NULL;
            (void)sbx_probe_clone3(CLONE_NEWUSER, SBX_PROBE_EXIT, &status, &step);
        }
        _exit(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    return WIFEXITED(st) ? WEXITSTATUS(st) : -ECHILD;
}
