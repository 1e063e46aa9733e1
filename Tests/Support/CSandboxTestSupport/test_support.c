#define _GNU_SOURCE
#include "sandbox_test_support.h"
#include "sandbox_supervisor.h" /* sbx_recv_fd */
#include "sandbox_mounts.h"   /* sbx_mounts_spawn_userns_helper */
#include "sandbox_probe.h"    /* sbx_probe_clone3 */

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/io_uring.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sched.h>
#include <time.h>
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

/* A socket made by io_uring (IORING_OP_SOCKET), not by socket(2): one ring, one
 * submission, one completion, by raw system calls. Returns 0 when the socket was
 * made, else the errno of the step that failed (io_uring_setup's, or the
 * operation's result). */
static int iouring_socket(int family, int type) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    int ring = (int)syscall(__NR_io_uring_setup, 2, &p);
    if (ring < 0) return errno;
    int rc = EIO;
    size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    size_t sqe_len = p.sq_entries * sizeof(struct io_uring_sqe);
    if (p.features & IORING_FEAT_SINGLE_MMAP) sq_len = cq_len = sq_len > cq_len ? sq_len : cq_len;
    char *sq = mmap(NULL, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQ_RING);
    char *cq = (p.features & IORING_FEAT_SINGLE_MMAP) ? sq
        : mmap(NULL, cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_CQ_RING);
    struct io_uring_sqe *sqes = mmap(NULL, sqe_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQES);
    if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED) { rc = errno; goto out; }
    unsigned *tail = (unsigned *)(sq + p.sq_off.tail);
    unsigned index = *tail & *(unsigned *)(sq + p.sq_off.ring_mask);
    struct io_uring_sqe *sqe = &sqes[index];
    memset(sqe, 0, sizeof *sqe);
    sqe->opcode = IORING_OP_SOCKET;
    sqe->fd = family;   /* domain */
    sqe->off = (unsigned)type;
    sqe->len = 0;       /* protocol */
    ((unsigned *)(sq + p.sq_off.array))[index] = index;
    __atomic_store_n(tail, *tail + 1, __ATOMIC_RELEASE);
    if (syscall(__NR_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0) { rc = errno; goto out; }
    unsigned head = __atomic_load_n((unsigned *)(cq + p.cq_off.head), __ATOMIC_ACQUIRE);
    struct io_uring_cqe *cqe = (struct io_uring_cqe *)(cq + p.cq_off.cqes) + (head & *(unsigned *)(cq + p.cq_off.ring_mask));
    if (cqe->res >= 0) { close(cqe->res); rc = 0; } else rc = -cqe->res;
out:
    if (sqes != MAP_FAILED) munmap(sqes, sqe_len);
    if (cq != MAP_FAILED && cq != sq) munmap(cq, cq_len);
    if (sq != MAP_FAILED) munmap(sq, sq_len);
    close(ring);
    return rc;
}

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
    case SBX_FENCE_PROBE_SOCKETPAIR_NETLINK:
    case SBX_FENCE_PROBE_SOCKETPAIR_UNIX: {
        int sv[2];
        rc = syscall(SYS_socketpair, probe == SBX_FENCE_PROBE_SOCKETPAIR_UNIX ? AF_UNIX : AF_NETLINK,
                     probe == SBX_FENCE_PROBE_SOCKETPAIR_UNIX ? SOCK_STREAM : SOCK_RAW, 0, sv);
        if (rc == 0) { close(sv[0]); close(sv[1]); }
        break;
    }
    case SBX_FENCE_PROBE_IOURING_SOCKET_NETLINK:
        return iouring_socket(AF_NETLINK, SOCK_RAW);
    case SBX_FENCE_PROBE_CLONE_NEWUSER:
    case SBX_FENCE_PROBE_CLONE_PLAIN:
    case SBX_FENCE_PROBE_CLONE3_NEWUSER: {
        uint64_t args[11] = { 0 };   /* struct clone_args, version 0 (88 bytes) */
        args[0] = CLONE_NEWUSER;     /* flags */
        args[4] = SIGCHLD;           /* exit_signal */
        if (probe == SBX_FENCE_PROBE_CLONE3_NEWUSER) rc = syscall(SYS_clone3, args, 88);
        else rc = syscall(SYS_clone, (probe == SBX_FENCE_PROBE_CLONE_NEWUSER ? CLONE_NEWUSER : 0) | SIGCHLD, 0, 0, 0, 0);
        if (rc == 0) _exit(0);
        if (rc > 0) { int st; waitpid((pid_t)rc, &st, 0); rc = 0; }
        break;
    }
    case SBX_FENCE_PROBE_SOCKET_MPTCP:
        rc = syscall(SYS_socket, AF_INET, SOCK_STREAM, 262);
        if (rc >= 0) close((int)rc);
        break;
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

int sbx_test_io_uring(void) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    return (int)syscall(__NR_io_uring_setup, 2, &p);
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
    /* Other tests' runs take the dumpable lock in this process's threads. */
    long pid = sbx_copy_process(NULL);
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
    if (pid < 0) return (int)pid;
    int st = 0;
    while (waitpid((pid_t)pid, &st, 0) < 0 && errno == EINTR) {}
    return WIFEXITED(st) ? WEXITSTATUS(st) : -ECHILD;
}

static _Atomic int lock_held; /* the holder has taken the lock */

static void *hold_dumpable_lock(void *unused) {
    (void)unused;
    sbx_dumpable_lock();
    lock_held = 1;
    struct timespec hold = { 0, 300 * 1000 * 1000 };
    while (nanosleep(&hold, &hold) < 0 && errno == EINTR) {}
    sbx_dumpable_unlock();
    return NULL;
}

int sbx_test_copy_while_lock_held(int fenced) {
    lock_held = 0;
    pthread_t holder;
    int r = pthread_create(&holder, NULL, hold_dumpable_lock, NULL);
    if (r != 0) return -r;
    while (!lock_held) sched_yield();
    long pid;
    int pidfd = -1;
    if (fenced) {
        pid = sbx_copy_process(&pidfd);
    } else {
        pid = fork();
        if (pid < 0) pid = -errno;
        else if (pid > 0) { pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0); }
    }
    if (pid == 0) {
        /* What the spawner's copy does before it spawns with a uid of its own. */
        sbx_dumpable_lock();
        sbx_dumpable_unlock();
        _exit(0);
    }
    int result = 0;
    if (pid < 0) result = (int)pid;
    else if (pidfd < 0) result = -errno;
    else {
        struct pollfd p = { .fd = pidfd, .events = POLLIN };
        int n;
        do { n = poll(&p, 1, 5000); } while (n < 0 && errno == EINTR);
        if (n == 0) { syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0); result = -ETIMEDOUT; }
        else if (n < 0) result = -errno;
    }
    if (pid > 0) {
        int st = 0;
        while (waitpid((pid_t)pid, &st, 0) < 0 && errno == EINTR) {}
        if (result == 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) result = -ECHILD;
    }
    if (pidfd >= 0) close(pidfd);
    pthread_join(holder, NULL);
    return result;
}

/* ---- The spawner's flattening (sandbox_spawner.h). ---- */

#include "sandbox_child.h"
#include "sandbox_spawner.h"

static int differ_str(const char *a, const char *b) {
    if (!a || !b) return a != b;
    return strcmp(a, b) != 0;
}

static int differ_strv(char *const *a, char *const *b) {
    if (!a || !b) return a != b;
    size_t i = 0;
    for (; a[i] && b[i]; i++) if (strcmp(a[i], b[i])) return 1;
    return a[i] != b[i];
}

struct roundtrip { const struct sbx_spec *want; int differ; };

/* Descriptors come back as the index they travel as: 0 is the working directory,
 * then one per descriptor in flatten's order. */
static void compare_spec(const struct sbx_spec *got, void *ctx) {
    struct roundtrip *rt = ctx;
    const struct sbx_spec *w = rt->want;
    int d = 0;
    d += got->clone_flags != w->clone_flags;
    d += got->nested != w->nested;
    d += got->cgroup_fd != 1;
    d += got->n_cgroup_join_fds != 2 || got->cgroup_join_fds[0] != 2 || got->cgroup_join_fds[1] != 3;
    d += got->loopback_up != w->loopback_up || got->premade_netns_ok != w->premade_netns_ok;
    d += got->netns_fd != 14 || got->command_fd != 15;
    d += differ_str(got->uid_map, w->uid_map) + differ_str(got->gid_map, w->gid_map);
    d += got->has_userns_owner != w->has_userns_owner || got->userns_owner != w->userns_owner;
    d += differ_str(got->staging, w->staging);
    d += got->n_mounts != w->n_mounts;
    for (size_t i = 0; i < w->n_mounts && i < got->n_mounts; i++) {
        const struct sbx_mount_op *a = &got->mounts[i], *b = &w->mounts[i];
        d += a->kind != b->kind || a->flags != b->flags || a->dev != b->dev || a->ino != b->ino;
        d += differ_str(a->source, b->source) + differ_str(a->dest, b->dest) + differ_str(a->data, b->data);
        d += a->fd != (b->fd < 0 ? -1 : 4);
    }
    d += differ_str(got->hostname, w->hostname);
    d += got->n_rlimits != w->n_rlimits || memcmp(got->rlimits, w->rlimits, w->n_rlimits * sizeof *w->rlimits);
    d += got->uid != w->uid || got->gid != w->gid || got->new_session != w->new_session;
    d += differ_str(got->workdir, w->workdir);
    d += differ_strv(got->argv, w->argv) + differ_strv(got->envp, w->envp);
    d += differ_str(got->search_path, w->search_path);
    d += got->exec_fd != 5;
    d += differ_strv(got->exec_argv, w->exec_argv);
    d += got->exec_ctime_sec != w->exec_ctime_sec || got->exec_ctime_nsec != w->exec_ctime_nsec;
    d += got->exec_size != w->exec_size || got->exec_leased != w->exec_leased;
    d += differ_str(got->exec_view, w->exec_view);
    d += got->script_fd != 6;
    d += got->script_ctime_sec != w->script_ctime_sec || got->script_ctime_nsec != w->script_ctime_nsec;
    d += got->script_size != w->script_size;
    d += got->cap_keep != w->cap_keep || got->apply_caps != w->apply_caps;
    d += got->landlock_fd != 7 || got->landlock_restrict_flags != w->landlock_restrict_flags;
    d += got->n_landlock_inner != w->n_landlock_inner;
    for (size_t i = 0; i < w->n_landlock_inner && i < got->n_landlock_inner; i++)
        d += differ_str(got->landlock_inner[i].path, w->landlock_inner[i].path) + (got->landlock_inner[i].access != w->landlock_inner[i].access);
    d += got->seccomp_len != w->seccomp_len || memcmp(got->seccomp_filter, w->seccomp_filter, (size_t)w->seccomp_len * 8);
    d += got->seccomp_flags != w->seccomp_flags;
    d += got->seccomp_unlogged_len != w->seccomp_unlogged_len || memcmp(got->seccomp_unlogged, w->seccomp_unlogged, (size_t)w->seccomp_unlogged_len * 8);
    d += got->seccomp_fence_len != w->seccomp_fence_len || memcmp(got->seccomp_fence, w->seccomp_fence, (size_t)w->seccomp_fence_len * 8);
    d += got->notify_sock != 8 || got->sync_fd != 9 || got->error_fd != 10 || got->status_fd != 11;
    d += got->stdio_fds[0] != 12 || got->stdio_fds[1] != 13 || got->stdio_fds[2] != -1;
    d += got->argv_area != w->argv_area || got->argv_area_len != w->argv_area_len;
    rt->differ = d;
}

int sbx_test_spawner_roundtrip(void) {
    static char *argv[] = { "sh", "-c", "echo hi", NULL };
    static char *envp[] = { "PATH=/usr/bin:/bin", "A=b", "EMPTY=", NULL };
    static char *exec_argv[] = { "/usr/bin/python3", "/dev/fd/6", NULL };
    int join[2] = { 40, 41 };
    struct sbx_mount_op mounts[3] = {
        { SBX_MOUNT_BIND, SBX_MF_RDONLY, "/usr", "/usr", NULL, -1, 7, 9 },
        { SBX_MOUNT_MOVE_FD, 0, NULL, "/work", NULL, 42, 0, 0 },
        { SBX_MOUNT_FILE, SBX_MF_RDONLY, NULL, "/etc/passwd", "root:x:0:0::/:/bin/sh\n", -1, 0, 0 },
    };
    struct sbx_rlimit rlimits[2] = { { RLIMIT_NOFILE, 64, 128 }, { RLIMIT_NPROC, 10, 10 } };
    struct sbx_landlock_inner inner[2] = { { "/tmp", 0x3 }, { "/work", 0x7ff } };
    struct sock_filter filter[3] = { { 0x20, 0, 0, 4 }, { 0x15, 0, 1, 62 }, { 0x06, 0, 0, 0x7fff0000 } };
    struct sock_filter unlogged[1] = { { 0x06, 0, 0, 0x7fff0000 } };
    struct sock_filter fence[2] = { { 0x20, 0, 0, 0 }, { 0x06, 0, 0, 0x7fff0000 } };
    static char area[] = "sandbox\0serve";
    struct sbx_spec s;
    memset(&s, 0, sizeof s);
    s.clone_flags = SBX_CLONE_NEWNS | SBX_CLONE_NEWPID | SBX_CLONE_NEWUSER;
    s.nested = 0;
    s.cgroup_fd = 39;
    s.cgroup_join_fds = join; s.n_cgroup_join_fds = 2;
    s.loopback_up = 1;
    s.premade_netns_ok = 1;
    s.netns_fd = 52;
    s.uid_map = "0 100000 1\n"; s.gid_map = "0 100000 1\n";
    s.has_userns_owner = 1; s.userns_owner = 100000;
    s.staging = "/run/sandbox/x/root";
    s.mounts = mounts; s.n_mounts = 3;
    s.hostname = "sandbox";
    s.rlimits = rlimits; s.n_rlimits = 2;
    s.uid = 1000; s.gid = 1001; s.new_session = 1;
    s.workdir = "/work";
    s.argv = argv; s.envp = envp;
    s.search_path = "/usr/bin:/bin";
    s.exec_fd = 43; s.exec_argv = exec_argv;
    s.exec_ctime_sec = 1700000000; s.exec_ctime_nsec = 123; s.exec_size = 4096; s.exec_leased = 1;
    s.exec_view = "/usr/bin/python3";
    s.script_fd = 44; s.script_ctime_sec = 1700000001; s.script_ctime_nsec = 456; s.script_size = 77;
    s.cap_keep = 1ull << 10; s.apply_caps = 1;
    s.landlock_fd = 45; s.landlock_restrict_flags = 2;
    s.landlock_inner = inner; s.n_landlock_inner = 2;
    s.seccomp_filter = filter; s.seccomp_len = 3; s.seccomp_flags = 8;
    s.seccomp_unlogged = unlogged; s.seccomp_unlogged_len = 1;
    s.seccomp_fence = fence; s.seccomp_fence_len = 2;
    s.notify_sock = 46; s.sync_fd = 47; s.error_fd = 48; s.status_fd = 49;
    s.stdio_fds[0] = 50; s.stdio_fds[1] = 51; s.stdio_fds[2] = -1;
    s.command_fd = 53;
    s.argv_area = area; s.argv_area_len = sizeof area;
    struct roundtrip rt = { &s, -1 };
    int r = sbx_spawner_roundtrip(&s, compare_spec, &rt);
    return r < 0 ? r : rt.differ;
}

static void ignore_spec(const struct sbx_spec *got, void *ctx) { (void)got; (void)ctx; }

int sbx_test_spawner_fit(int n_moved) {
    static char *argv[] = { "true", NULL };
    struct sbx_mount_op *mounts = calloc((size_t)n_moved, sizeof *mounts);
    if (!mounts) return -ENOMEM;
    for (int i = 0; i < n_moved; i++) {
        mounts[i].kind = SBX_MOUNT_MOVE_FD; mounts[i].dest = "/m"; mounts[i].fd = 100 + i;
    }
    struct sbx_spec s;
    memset(&s, 0, sizeof s);
    s.cgroup_fd = -1; s.netns_fd = -1; s.exec_fd = -1; s.script_fd = -1; s.landlock_fd = -1; s.notify_sock = -1;
    s.sync_fd = 3; s.error_fd = 4; s.status_fd = 5; s.command_fd = -1;
    s.stdio_fds[0] = s.stdio_fds[1] = s.stdio_fds[2] = -1;
    s.mounts = mounts; s.n_mounts = (size_t)n_moved;
    s.argv = argv;
    int r = sbx_spawner_roundtrip(&s, ignore_spec, NULL);
    free(mounts);
    return r;
}

/* The command of a sandbox built ahead over a stream socket pair, as the supervisor
 * sends it and the init receives it: 0 when every command field arrives equal (the
 * descriptors as descriptors of the same files), every other field of the receiving
 * spec untouched, a message out of shape refused (-EPROTO) and EOF told apart
 * (-EPIPE); else a positive count of what differed, or -errno. */
static int same_file(int a, int b) {
    struct stat x, y;
    return a >= 0 && b >= 0 && fstat(a, &x) == 0 && fstat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

int sbx_test_command_roundtrip(void) {
    static char *argv[] = { "sh", "-c", "echo hi", NULL };
    static char *envp[] = { "PATH=/usr/bin:/bin", "A=b", NULL };
    static char *exec_argv[] = { "/usr/bin/python3", "/dev/fd/6", NULL };
    int sv[2], out[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return -errno;
    if (pipe2(out, O_CLOEXEC) < 0) { int e = errno; close(sv[0]); close(sv[1]); return -e; }
    int exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    struct sbx_spec cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.argv = argv; cmd.envp = envp; cmd.search_path = "/usr/bin:/bin";
    cmd.exec_fd = exe; cmd.exec_argv = exec_argv; cmd.exec_view = "/usr/bin/python3";
    cmd.exec_ctime_sec = 1700000000; cmd.exec_ctime_nsec = 123; cmd.exec_size = 4096; cmd.exec_leased = 1;
    cmd.script_fd = -1;
    cmd.stdio_fds[0] = out[0]; cmd.stdio_fds[1] = out[1]; cmd.stdio_fds[2] = out[1];
    /* Fields that are not the command's: the sender ignores them. */
    cmd.sync_fd = 3; cmd.workdir = "/elsewhere";
    int d = 0;
    int r = sbx_command_send(sv[0], &cmd);
    struct sbx_spec got;
    memset(&got, 0, sizeof got);
    got.workdir = "/work"; got.sync_fd = 9; got.error_fd = 10; got.hostname = "sandbox";
    if (r == 0) r = sbx_command_receive(sv[1], &got);
    if (r == 0) {
        d += differ_strv(got.argv, argv) + differ_strv(got.envp, envp) + differ_str(got.search_path, "/usr/bin:/bin");
        d += !same_file(got.exec_fd, exe) + differ_strv(got.exec_argv, exec_argv) + differ_str(got.exec_view, "/usr/bin/python3");
        d += got.exec_ctime_sec != 1700000000 || got.exec_ctime_nsec != 123 || got.exec_size != 4096 || got.exec_leased != 1;
        d += got.script_fd != -1;
        d += !same_file(got.stdio_fds[0], out[0]) + !same_file(got.stdio_fds[1], out[1]) + !same_file(got.stdio_fds[2], out[1]);
        d += differ_str(got.workdir, "/work") + (got.sync_fd != 9) + (got.error_fd != 10) + differ_str(got.hostname, "sandbox");
        int received[4] = { got.exec_fd, got.stdio_fds[0], got.stdio_fds[1], got.stdio_fds[2] };
        for (int i = 0; i < 4; i++) if (received[i] >= 0) close(received[i]);
        /* A message out of shape: a bad magic. */
        uint64_t junk[8] = { 0x1234 };
        if (send(sv[0], junk, sizeof junk, MSG_NOSIGNAL) != (ssize_t)sizeof junk) r = -errno;
        else d += sbx_command_receive(sv[1], &got) != -EPROTO;
        /* The supervisor let it go: EOF. */
        close(sv[0]); sv[0] = -1;
        if (r == 0) d += sbx_command_receive(sv[1], &got) != -EPIPE;
    }
    if (sv[0] >= 0) close(sv[0]);
    close(sv[1]); close(out[0]); close(out[1]);
    if (exe >= 0) close(exe);
    return r < 0 ? r : d;
}

int sbx_test_netns_owned_by_ours(int pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/net", pid);
    int net = open(path, O_RDONLY | O_CLOEXEC);
    if (net < 0) return -errno;
    int owner = ioctl(net, _IO(0xb7, 0x1)); /* NS_GET_USERNS */
    int e = errno;
    close(net);
    if (owner < 0) return -e;
    struct stat a, b;
    int r = fstat(owner, &a) == 0 && stat("/proc/self/ns/user", &b) == 0 ? (a.st_dev == b.st_dev && a.st_ino == b.st_ino) : -errno;
    close(owner);
    return r;
}

/* ---- A FUSE daemon that never answers FLUSH or ACCESS (raw /dev/fuse). ---- */

#include <linux/fuse.h>
#include <sys/mount.h>

static void fuse_reply(int fd, uint64_t unique, int err, const void *p, size_t n) {
    char out[4096];
    struct fuse_out_header h = { .len = (uint32_t)(sizeof h + n), .error = err, .unique = unique };
    memcpy(out, &h, sizeof h);
    if (n) memcpy(out + sizeof h, p, n);
    if (write(fd, out, sizeof h + n) < 0) { /* the kernel dropped the request */ }
}

static void fuse_attr_of(struct fuse_attr *a, uint64_t ino) {
    memset(a, 0, sizeof *a);
    a->ino = ino;
    if (ino == 1) { a->mode = S_IFDIR | 0755; a->nlink = 2; }
    else { a->mode = S_IFREG | 0644; a->nlink = 1; a->size = 6; }
}

static _Noreturn void fuse_daemon(int fd, int except_root) {
    static char buf[1 << 17];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) { if (errno == EINTR || errno == ENOENT) continue; _exit(0); }
        struct fuse_in_header *in = (void *)buf;
        void *arg = buf + sizeof *in;
        switch (in->opcode) {
        case FUSE_INIT: {
            struct fuse_init_in *i = arg;
            struct fuse_init_out o;
            memset(&o, 0, sizeof o);
            o.major = FUSE_KERNEL_VERSION;
            o.minor = i->minor < FUSE_KERNEL_MINOR_VERSION ? i->minor : FUSE_KERNEL_MINOR_VERSION;
            o.max_readahead = i->max_readahead; o.max_write = 4096; o.max_pages = 1;
            fuse_reply(fd, in->unique, 0, &o, sizeof o);
            break;
        }
        case FUSE_LOOKUP: {
            if (strcmp((const char *)arg, "f")) { fuse_reply(fd, in->unique, -ENOENT, NULL, 0); break; }
            struct fuse_entry_out e;
            memset(&e, 0, sizeof e);
            e.nodeid = 2;
            fuse_attr_of(&e.attr, 2);
            fuse_reply(fd, in->unique, 0, &e, sizeof e);
            break;
        }
        case FUSE_GETATTR: {
            struct fuse_attr_out o;
            memset(&o, 0, sizeof o);
            fuse_attr_of(&o.attr, in->nodeid);
            fuse_reply(fd, in->unique, 0, &o, sizeof o);
            break;
        }
        case FUSE_OPEN: case FUSE_OPENDIR: {
            struct fuse_open_out o;
            memset(&o, 0, sizeof o);
            o.fh = 1;
            fuse_reply(fd, in->unique, 0, &o, sizeof o);
            break;
        }
        case FUSE_READ: {
            struct fuse_read_in *r = arg;
            size_t off = r->offset > 6 ? 6 : (size_t)r->offset;
            fuse_reply(fd, in->unique, 0, "hello\n" + off, 6 - off);
            break;
        }
        case FUSE_FLUSH: case FUSE_ACCESS:
            if (except_root && in->uid == 0) fuse_reply(fd, in->unique, 0, NULL, 0);
            break;                                          /* else never answered */
        case FUSE_FORGET: case FUSE_BATCH_FORGET: case FUSE_INTERRUPT: break;
        case FUSE_RELEASE: case FUSE_RELEASEDIR: case FUSE_READDIR: fuse_reply(fd, in->unique, 0, NULL, 0); break;
        case FUSE_STATFS: {
            struct fuse_statfs_out o;
            memset(&o, 0, sizeof o);
            fuse_reply(fd, in->unique, 0, &o, sizeof o);
            break;
        }
        default: fuse_reply(fd, in->unique, -ENOSYS, NULL, 0);
        }
    }
}

int sbx_test_fuse_that_never_flushes(const char *mountpoint, int except_root, int *daemon_pid) {
    int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (fd < 0) return -errno;
    char opts[128];
    snprintf(opts, sizeof opts, "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other", fd);
    if (mount("sbx-test-fuse", mountpoint, "fuse", MS_NOSUID | MS_NODEV, opts) < 0) { int e = errno; close(fd); return -e; }
    pid_t pid = fork();
    if (pid < 0) { int e = errno; umount2(mountpoint, MNT_DETACH); close(fd); return -e; }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        /* Only /dev/fuse: a copy of the test process's other descriptors, kept for
         * the daemon's life, would keep files other tests are writing open for
         * writing (their exec then fails with ETXTBSY, seen in the full suite). */
        if (fd != 3 && dup2(fd, 3) < 0) _exit(1);
        syscall(SYS_close_range, 4U, ~0U, 0);
        fuse_daemon(3, except_root);
    }
    close(fd);
    *daemon_pid = pid;
    return 0;
}
