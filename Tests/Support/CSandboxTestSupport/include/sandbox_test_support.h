/*
 * Test support for Tests/SandboxKernelTests: fork a child, apply a fence to it,
 * try a forbidden thing and report the errno. Kept out of Sources/ so nothing of it
 * ships in the product (and the no-kill(2) lint of Sources/ stays meaningful).
 */
#ifndef SANDBOX_TEST_SUPPORT_H
#define SANDBOX_TEST_SUPPORT_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "sandbox_fence.h"

/* ---- TEST SUPPORT ONLY ---------------------------------------------------- *
 * Used by Tests/SandboxKernelTests/FenceTests.swift to try a forbidden thing in
 * a forked child. The child applies PR_SET_NO_NEW_PRIVS and the fence, runs the
 * probe `repeat` times and _exit()s with the probe's errno (0 on success; 251
 * when repeats disagreed); setup failures exit with 252-254. Not for production
 * use: it forks the calling process.
 */
enum {
    SBX_FENCE_PROBE_NONE = 0,
    SBX_FENCE_PROBE_PTRACE_TRACEME = 1,      /* syscall(SYS_ptrace, PTRACE_TRACEME, 0x1111, 0x2222, 0x3333) */
    SBX_FENCE_PROBE_SOCKET_UNIX = 2,
    SBX_FENCE_PROBE_SOCKET_INET = 3,
    SBX_FENCE_PROBE_SOCKET_INET6 = 4,
    SBX_FENCE_PROBE_SOCKET_NETLINK = 5,
    SBX_FENCE_PROBE_SOCKET_PACKET = 6,
    SBX_FENCE_PROBE_SOCKET_NETLINK_HIGH = 7, /* a0 = (1 << 32) | AF_NETLINK: the kernel reads an int */
    SBX_FENCE_PROBE_X32_GETPID = 8,          /* syscall(__X32_SYSCALL_BIT | 39) */
    SBX_FENCE_PROBE_I386_GETPID = 9,         /* int $0x80, eax = 20 */
    SBX_FENCE_PROBE_OPEN_READ = 10,          /* open(path, O_RDONLY) */
    SBX_FENCE_PROBE_OPEN_WRITE = 11,         /* open(path, O_WRONLY | O_APPEND) */
    SBX_FENCE_PROBE_MKDIR = 12,              /* mkdir(path, 0700) */
    SBX_FENCE_PROBE_CONNECT_TCP = 13,        /* connect to 127.0.0.1:port */
    SBX_FENCE_PROBE_SIGNAL_PARENT = 14,      /* kill(getppid(), 0) */
    SBX_FENCE_PROBE_UNKNOWN_NR = 15,         /* syscall(100000, 0x1111): above every known number */
    SBX_FENCE_PROBE_GAP_NR = 16,             /* x86_64: syscall(400), in the gap 335…423 (ENOSYS elsewhere) */
    SBX_FENCE_PROBE_SOCKETPAIR_NETLINK = 17, /* socketpair(AF_NETLINK, SOCK_RAW, 0) */
    SBX_FENCE_PROBE_SOCKETPAIR_UNIX = 18,    /* socketpair(AF_UNIX, SOCK_STREAM, 0) */
    SBX_FENCE_PROBE_SOCKET_MPTCP = 19,       /* socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP) */
    SBX_FENCE_PROBE_IOURING_SOCKET_NETLINK = 20, /* io_uring_setup, then IORING_OP_SOCKET(AF_NETLINK, SOCK_RAW): no socket(2) */
    SBX_FENCE_PROBE_CLONE_NEWUSER = 21,      /* clone(CLONE_NEWUSER | SIGCHLD): the child exits at once */
    SBX_FENCE_PROBE_CLONE3_NEWUSER = 22,     /* clone3 with CLONE_NEWUSER, exit signal SIGCHLD */
    SBX_FENCE_PROBE_CLONE_PLAIN = 23,        /* clone(SIGCHLD): a fork */
};

/* Exit codes of a test child whose setup failed. */
enum {
    SBX_FENCE_TEST_EXIT_MIXED = 251,
    SBX_FENCE_TEST_EXIT_NNP = 252,
    SBX_FENCE_TEST_EXIT_FENCE = 253,
    SBX_FENCE_TEST_EXIT_SEND = 254,
};

/* Fork; the child installs `filter` (`len` bytes of struct sock_filter; none
 * when len is 0) with `flags`, runs the probe. Returns the waitpid() status. */
int sbx_fence_test_probe_seccomp(const void *filter, size_t len, unsigned int flags,
                                 int probe, int repeat);

/* Fork; the child installs `filter` with SECCOMP_FILTER_FLAG_NEW_LISTENER, sends
 * the listener fd back over a socketpair (SCM_RIGHTS) and runs the probe. Returns
 * the listener fd in the parent (-1 on failure) and the child's pid in *pid_out
 * (to be reaped with sbx_fence_test_wait whatever the result). */
int sbx_fence_test_spawn_notify(const void *filter, size_t len, int probe, int repeat,
                                pid_t *pid_out);

/* Fork; the child calls landlock_restrict_self(ruleset_fd) and runs the probe
 * against `path` / `port`. Returns the waitpid() status. */
int sbx_fence_test_probe_landlock(int ruleset_fd, int probe, const char *path, uint16_t port);

/* waitpid(pid) retrying EINTR; the status or -1. */
int sbx_fence_test_wait(pid_t pid);

/* A new io_uring instance (two entries), close-on-exec as the kernel makes it; -1
 * with errno on failure. */
int sbx_test_io_uring(void);


/* clone3(CLONE_INTO_CGROUP) a child that pauses until killed; returns its pid. */
int sbx_cg_clone_into_paused(int cgroup_fd);

/* A process starts the idmap helper and dies without killing it: a pidfd of the
 * helper, -ESRCH when it is gone already, or another -errno. */
int sbx_test_orphaned_userns_helper(void);

/* A uid-0 process with no capability opens the idmap helper's memory read-write; the
 * helper's creator is not dumpable when `undumpable`. 0: it could; else the errno of
 * the refusal; -errno: the set-up failed. */
int sbx_test_open_helper_memory(int undumpable);

/* A fork that starts dumpable makes an idmap user namespace (which 0) or runs the
 * namespace probe (which 1): its dumpable flag afterwards (0: hardened), or -errno;
 * 100/101: the set-up failed. */
int sbx_test_dumpable_after(int which);
/* A copy of this process made while another thread holds the dumpable lock (for
 * 300 ms): `fenced` 1 makes it with sbx_copy_process, 0 with a bare fork (the
 * control). The copy takes and releases the lock, as the spawner does before it
 * spawns with a uid of its own. 0 if the copy finished within 5 s, -ETIMEDOUT if it
 * was still waiting (then killed), or -errno. */
int sbx_test_copy_while_lock_held(int fenced);

/* prctl(PR_GET_DUMPABLE) of this process. */
int sbx_test_dumpable(void);

/* A spec with every field set, flattened for the spawner and read back: how many
 * fields differ (0: none), or -errno when it did not fit or read back. */
int sbx_test_spawner_roundtrip(void);
/* The same with `n_moved` moved mounts (one descriptor each): 0, or -errno (-EMFILE
 * when more descriptors than one message carries). */
int sbx_test_spawner_fit(int n_moved);
/* The command of a sandbox built ahead, sent and received (sbx_command_send/receive):
 * 0 when it arrives whole and alone; a malformed message and EOF are told apart. */
int sbx_test_command_roundtrip(void);

/* Whether the network namespace of `pid` is owned by this process's user namespace
 * (ioctl NS_GET_USERNS): 1 yes, 0 no, -errno. */
int sbx_test_netns_owned_by_ours(int pid);

/* Mounts a FUSE filesystem at `mountpoint` served by a forked daemon (our child,
 * *daemon_pid): one file "f" ("hello\n"); it never answers FLUSH or ACCESS (from
 * anyone, or with `except_root` from any uid but 0), so such a close of "f" or an
 * access check on the root waits until the daemon is killed (which aborts the
 * connection). 0 or -errno. Unmount with umount2(MNT_DETACH). */
int sbx_test_fuse_that_never_flushes(const char *mountpoint, int except_root, int *daemon_pid);
#endif
