/*
 * sandbox_fence.h — thin C wrappers for the supervisor side of the kernel fences
 * (Landlock and seccomp), for what Swift cannot call directly: raw syscalls
 * without a libc wrapper (landlock_*, seccomp), variadic ioctl(), and the
 * seccomp user-notification structs whose size the kernel decides at runtime.
 *
 * Nothing here runs between clone and execve; the child runner has its own code.
 * The functions return -1 and leave errno set on failure unless noted.
 *
 * The part marked TEST SUPPORT at the end exists only so the Swift tests can
 * apply a filter or a ruleset to a forked child and observe the result.
 */
#ifndef SANDBOX_FENCE_H
#define SANDBOX_FENCE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Landlock ------------------------------------------------------------ */

/* landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION): the highest
 * ABI the running kernel supports (>= 1), or -errno (ENOSYS: not built in,
 * EOPNOTSUPP: built in but disabled at boot). */
int sbx_fence_landlock_abi(void);

/* landlock_create_ruleset() with a struct landlock_ruleset_attr holding the
 * three masks; `abi` picks the struct size the kernel is given (8 bytes for
 * ABI 1-3, 16 with handled_access_net for ABI 4-5, 24 with scoped for ABI 6+),
 * so a mask the ABI does not have is never passed. Returns an O_CLOEXEC fd. */
int sbx_fence_landlock_create_ruleset(uint64_t handled_access_fs,
                                      uint64_t handled_access_net,
                                      uint64_t scoped, int abi);

/* open(path, O_PATH | O_CLOEXEC): the parent_fd of a path-beneath rule (O_PATH is
 * a _GNU_SOURCE constant Swift's Glibc module does not export). */
int sbx_fence_open_path(const char *path);

/* landlock_add_rule(LANDLOCK_RULE_PATH_BENEATH) for an fd opened O_PATH. */
int sbx_fence_landlock_add_path_rule(int ruleset_fd, int parent_fd, uint64_t allowed_access);

/* landlock_add_rule(LANDLOCK_RULE_NET_PORT) (ABI 4). */
int sbx_fence_landlock_add_net_rule(int ruleset_fd, uint64_t port, uint64_t allowed_access);

/* ---- seccomp ------------------------------------------------------------- */

/* memfd_create(name, MFD_CLOEXEC): where seccomp_export_bpf() writes (libseccomp
 * 2.5 exports to an fd only). */
int sbx_fence_memfd(const char *name);

/* The function-like action macros of <seccomp.h> (SCMP_ACT_ERRNO(x),
 * SCMP_ACT_TRACE(x)); only the macros are used, libseccomp is not linked here. */
uint32_t sbx_fence_scmp_act_errno(uint16_t err);
uint32_t sbx_fence_scmp_act_trace(uint16_t msg);

/* seccomp(SECCOMP_GET_NOTIF_SIZES): the sizes the kernel uses for struct
 * seccomp_notif and struct seccomp_notif_resp (they may grow; the receive
 * buffers must be at least this big). */
int sbx_fence_notif_sizes(uint16_t *notif, uint16_t *notif_resp, uint16_t *data);

/* One user notification, flattened (struct seccomp_notif + struct seccomp_data). */
struct sbx_fence_notification {
    uint64_t id;
    uint32_t pid;
    uint32_t flags;
    int32_t nr;
    uint32_t arch;              /* AUDIT_ARCH_* == SCMP_ARCH_* token */
    uint64_t instruction_pointer;
    uint64_t args[6];
};

/* ioctl(SECCOMP_IOCTL_NOTIF_RECV). `buf` (`buf_size` >= the kernel's
 * seccomp_notif size) is zeroed before the call, as the kernel requires.
 * Blocks until a notification is pending; ENOENT: the caller died meanwhile. */
int sbx_fence_notif_recv(int listener_fd, void *buf, size_t buf_size,
                         struct sbx_fence_notification *out);

/* ioctl(SECCOMP_IOCTL_NOTIF_SEND) answering `id` with error = -err and val = 0.
 * Never sets SECCOMP_USER_NOTIF_FLAG_CONTINUE. ENOENT: the caller is gone. */
int sbx_fence_notif_send_error(int listener_fd, void *buf, size_t buf_size,
                               uint64_t id, int32_t err);

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

#ifdef __cplusplus
}
#endif

#endif /* SANDBOX_FENCE_H */
