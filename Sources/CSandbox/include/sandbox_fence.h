/*
 * sandbox_fence.h — thin C wrappers for the supervisor side of the kernel fences
 * (Landlock and seccomp), for what Swift cannot call directly: raw syscalls
 * without a libc wrapper (landlock_*, seccomp), variadic ioctl(), and the
 * seccomp user-notification structs whose size the kernel decides at runtime.
 *
 * Nothing here runs between clone and execve; the child runner has its own code.
 * The functions return -1 and leave errno set on failure unless noted.

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

/* PR_SET_NO_NEW_PRIVS, then landlock_restrict_self(ruleset_fd, 0) on the calling
 * thread: for `sandbox landlock-exec`, the entrypoint of an exported OCI bundle,
 * which restricts itself and then execs the command (the executor's child does
 * this in child.c instead). */
int sbx_fence_landlock_restrict_self(int ruleset_fd);

/* ---- seccomp ------------------------------------------------------------- */

/* memfd_create(name, MFD_CLOEXEC): where seccomp_export_bpf() writes (libseccomp
 * 2.5 exports to an fd only). */
int sbx_fence_memfd(const char *name);
/* memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING), and the seals that make it
 * immutable (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL): a checked
 * script is copied into one, so the bytes the interpreter reads are the bytes hashed. */
int sbx_memfd_sealable(const char *name);
int sbx_memfd_seal(int fd);
/* A read lease on `fd` (F_SETLEASE F_RDLCK, O_RDONLY fd): refused (EAGAIN) while any
 * process has the file open for writing or mapped shared-writable, broken by any
 * later open for writing or truncate, which then waits for the holder (up to
 * /proc/sys/fs/lease-break-time). Needs the file's owner as fsuid or CAP_LEASE
 * (EACCES). sbx_read_lease sets SIGIO to SIG_IGN for the whole process first and
 * leaves it so (the kernel signals the lease's owner, this process, on a break):
 * a library user that relies on SIGIO must restore it. sbx_lease_disown then
 * clears the owner (F_SETOWN 0: no signal at all; the lease is dropped if that
 * fails). sbx_holds_read_lease says 1 only while the lease is held and unbroken. */
int sbx_read_lease(int fd);
int sbx_lease_disown(int fd);
int sbx_holds_read_lease(int fd);
/* fstatfs's f_type (the filesystem's magic), -1 on error. */
int64_t sbx_fs_magic(int fd);
/* 1 when the file carries file capabilities (a `security.capability` xattr). */
int sbx_has_file_caps(int fd);

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

/* ioctl(SECCOMP_IOCTL_NOTIF_SEND) letting the call run (FLAG_CONTINUE): only for
 * on_violation = "log" (allow and record) and connect(2) handed over for the egress
 * account (network modes none/loopback), never after a check of the caller's memory. */
int sbx_fence_notif_send_continue(int listener_fd, void *buf, size_t buf_size, uint64_t id);

/* Reads `len` bytes at `addr` in the caller of notification `id` (process_vm_readv
 * on `pid`), then checks the notification is still valid (SECCOMP_IOCTL_NOTIF_ID_VALID),
 * so the bytes came from that caller, not a process that reused its pid. For the
 * denial account only: nothing is ever decided on them (the caller may change them
 * the moment after). Returns the bytes read, or -1 with errno. */
long sbx_fence_notif_read_caller(int listener_fd, uint64_t id, uint32_t pid, uint64_t addr, void *buf, size_t len);

/* ioctl(SECCOMP_IOCTL_NOTIF_ID_VALID): 0 while notification `id` is still pending
 * (its caller blocked in the call), so what was opened through /proc/<pid> before
 * was the caller's, not a process that reused its pid; -1 with errno (ENOENT) else. */
int sbx_fence_notif_id_valid(int listener_fd, uint64_t id);

/* ---- explicit file times, set by the supervisor (TimesFence) --------------- */

/* openat2(dirfd, path, {O_PATH | O_CLOEXEC [| O_NOFOLLOW] [| O_DIRECTORY], 0,
 * RESOLVE_NO_MAGICLINKS}): a path of the caller's, resolved as the kernel would for
 * it, but no /proc magic link (the supervisor's own /proc/self would be another
 * process's view). Returns an fd or -1. */
int sbx_times_open(int dirfd, const char *path, int nofollow, int directory);
/* openat2(rootfd, path, {O_PATH | O_CLOEXEC | O_DIRECTORY, 0, RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS}): the directory `path` names beneath
 * a writable bind's source, reached without leaving it and without a symlink (the
 * proof that a directory the kernel's path puts there is there). An fd or -1. */
int sbx_times_open_beneath(int rootfd, const char *path);
/* open(path, O_PATH | O_CLOEXEC), following a magic link: /proc/<pid>/fd/<n> and
 * /proc/<pid>/cwd of the caller. */
int sbx_times_open_caller(const char *proc_path);
/* The calling thread's effective capabilities without CAP_DAC_OVERRIDE,
 * CAP_DAC_READ_SEARCH and CAP_FOWNER (capset acts on the calling thread only), so
 * the lookups it makes for a nested command (the invoker's uid and groups, no
 * capability) get the answers the command would: a root supervisor would search
 * directories the command cannot. *saved gets the effective set's low word to give
 * back to sbx_times_restore_dac. 0 (nothing to drop is 0 too), or -1 with errno. */
int sbx_times_drop_dac(uint32_t *saved);
int sbx_times_restore_dac(uint32_t saved);
/* utimensat(fd, "", times, AT_EMPTY_PATH) on an O_PATH fd: the inode the fd names
 * (a symlink itself when opened O_NOFOLLOW). 0, or -1 with errno. */
int sbx_times_set(int fd, int64_t atime_sec, int64_t atime_nsec, int64_t mtime_sec, int64_t mtime_nsec);

/* ---- files ---------------------------------------------------------------- */

/* openat2(AT_FDCWD, path, {flags, mode, RESOLVE_NO_SYMLINKS}): no component of
 * `path` may be a symlink (ELOOP otherwise), so a link planted by an earlier run
 * cannot redirect the open. For `--result FILE`. Returns an fd or -1. */
int sbx_fence_open_no_symlinks(const char *path, int flags, unsigned mode);

#ifdef __cplusplus
}
#endif

#endif /* SANDBOX_FENCE_H */
