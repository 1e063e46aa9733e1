/*
 * fence.c — supervisor-side wrappers for Landlock and seccomp (see sandbox_fence.h).
 *
 * The installed UAPI headers may predate the Landlock ABIs this code knows
 * (4: network, 5: ioctl_dev, 6: scopes), so the structs the kernel reads are
 * declared here with the kernel's layout rather than taken from
 * <linux/landlock.h>; the constants are defined only where the header lacks them.
 */
#define _GNU_SOURCE
#include "sandbox_fence.h"
#include "sandbox_supervisor.h" /* sbx_recv_fd */
#include "kernel_abi.h"   /* SYS_openat2, struct sbx_open_how */

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <seccomp.h> /* macros only: SCMP_ACT_ERRNO, SCMP_ACT_TRACE */

#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#endif
#ifndef __NR_landlock_add_rule
#define __NR_landlock_add_rule 445
#endif
#ifndef __NR_landlock_restrict_self
#define __NR_landlock_restrict_self 446
#endif
#ifndef LANDLOCK_CREATE_RULESET_VERSION
#define LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#endif
/* enum landlock_rule_type in include/uapi/linux/landlock.h */
#define SBX_LANDLOCK_RULE_PATH_BENEATH 1
#define SBX_LANDLOCK_RULE_NET_PORT 2

/* struct landlock_ruleset_attr as of ABI 6 (Linux 6.12). */
struct sbx_landlock_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net; /* ABI 4 */
    uint64_t scoped;             /* ABI 6 */
};

/* struct landlock_path_beneath_attr: packed in the UAPI (12 bytes). */
struct sbx_landlock_path_beneath_attr {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

/* struct landlock_net_port_attr (ABI 4). */
struct sbx_landlock_net_port_attr {
    uint64_t allowed_access;
    uint64_t port;
};

int sbx_fence_landlock_abi(void) {
    long abi = syscall(__NR_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 0) return -errno;
    return (int)abi;
}

int sbx_fence_landlock_create_ruleset(uint64_t handled_access_fs, uint64_t handled_access_net,
                                      uint64_t scoped, int abi) {
    struct sbx_landlock_ruleset_attr attr = {
        .handled_access_fs = handled_access_fs,
        .handled_access_net = handled_access_net,
        .scoped = scoped,
    };
    size_t size = abi >= 6 ? sizeof attr
                : abi >= 4 ? offsetof(struct sbx_landlock_ruleset_attr, scoped)
                           : offsetof(struct sbx_landlock_ruleset_attr, handled_access_net);
    if ((abi < 4 && handled_access_net != 0) || (abi < 6 && scoped != 0)) {
        errno = EINVAL;
        return -1;
    }
    /* The ruleset fd is O_CLOEXEC by construction (landlock_create_ruleset(2)). */
    return (int)syscall(__NR_landlock_create_ruleset, &attr, size, 0);
}

int sbx_fence_open_path(const char *path) {
    return open(path, O_PATH | O_CLOEXEC);
}

int sbx_fence_landlock_add_path_rule(int ruleset_fd, int parent_fd, uint64_t allowed_access) {
    struct sbx_landlock_path_beneath_attr attr = {
        .allowed_access = allowed_access,
        .parent_fd = parent_fd,
    };
    return (int)syscall(__NR_landlock_add_rule, ruleset_fd, SBX_LANDLOCK_RULE_PATH_BENEATH, &attr, 0);
}

int sbx_fence_landlock_add_net_rule(int ruleset_fd, uint64_t port, uint64_t allowed_access) {
    struct sbx_landlock_net_port_attr attr = {
        .allowed_access = allowed_access,
        .port = port,
    };
    return (int)syscall(__NR_landlock_add_rule, ruleset_fd, SBX_LANDLOCK_RULE_NET_PORT, &attr, 0);
}

int sbx_fence_landlock_restrict_self(int ruleset_fd) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return -1;
    return (int)syscall(__NR_landlock_restrict_self, ruleset_fd, 0);
}

/* ---- seccomp ------------------------------------------------------------- */

int sbx_fence_memfd(const char *name) {
    return (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC);
}

int sbx_memfd_sealable(const char *name) {
    /* MFD_EXEC (6.3+): executable even where vm.memfd_noexec = 1 makes memfds
     * noexec by default; an older kernel does not know the flag (EINVAL). */
    int fd = (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC | MFD_ALLOW_SEALING | 0x0010U /* MFD_EXEC */);
    if (fd < 0 && errno == EINVAL) fd = (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    return fd;
}

int sbx_read_lease(int fd) {
    /* F_SETLEASE makes this process the file's owner for the break signal, SIGIO,
     * whose default action ends the process: a writer's open between F_SETLEASE and
     * the F_SETOWN 0 below killed a supervisor (red-team finding, 1 run in 150). So
     * SIGIO is ignored first, for good: the supervisor uses no signal-driven I/O,
     * and the child resets every disposition before it execs. */
    struct sigaction ignore;
    memset(&ignore, 0, sizeof ignore);
    ignore.sa_handler = SIG_IGN;
    if (sigaction(SIGIO, &ignore, NULL) < 0) return -1;
    return fcntl(fd, F_SETLEASE, F_RDLCK) < 0 ? -1 : 0;
}

int sbx_lease_disown(int fd) {
    /* No owner, no signal at all (F_GETLEASE still tells a break). */
    if (fcntl(fd, F_SETOWN, 0) < 0) { int e = errno; fcntl(fd, F_SETLEASE, F_UNLCK); errno = e; return -1; }
    return 0;
}

int sbx_holds_read_lease(int fd) {
    return fcntl(fd, F_GETLEASE) == F_RDLCK;
}

int64_t sbx_fs_magic(int fd) {
    struct statfs fs;
    if (fstatfs(fd, &fs) < 0) return -1;
    return (int64_t)(uint32_t)fs.f_type;
}

int sbx_has_file_caps(int fd) {
    return fgetxattr(fd, "security.capability", NULL, 0) > 0;
}

int sbx_memfd_seal(int fd) {
    return fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
}

uint32_t sbx_fence_scmp_act_errno(uint16_t err) { return SCMP_ACT_ERRNO(err); }
uint32_t sbx_fence_scmp_act_trace(uint16_t msg) { return SCMP_ACT_TRACE(msg); }

int sbx_fence_notif_sizes(uint16_t *notif, uint16_t *notif_resp, uint16_t *data) {
    struct seccomp_notif_sizes sizes;
    memset(&sizes, 0, sizeof sizes);
    if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) != 0) return -1;
    if (notif) *notif = sizes.seccomp_notif;
    if (notif_resp) *notif_resp = sizes.seccomp_notif_resp;
    if (data) *data = sizes.seccomp_data;
    return 0;
}

int sbx_fence_notif_recv(int listener_fd, void *buf, size_t buf_size,
                         struct sbx_fence_notification *out) {
    if (buf_size < sizeof(struct seccomp_notif)) {
        errno = EINVAL;
        return -1;
    }
    /* The kernel rejects a non-zeroed buffer with EINVAL (seccomp_unotify(2)). */
    memset(buf, 0, buf_size);
    if (ioctl(listener_fd, SECCOMP_IOCTL_NOTIF_RECV, buf) != 0) return -1;
    const struct seccomp_notif *n = buf;
    out->id = n->id;
    out->pid = n->pid;
    out->flags = n->flags;
    out->nr = n->data.nr;
    out->arch = n->data.arch;
    out->instruction_pointer = n->data.instruction_pointer;
    for (int i = 0; i < 6; i++) out->args[i] = n->data.args[i];
    return 0;
}

int sbx_fence_notif_send_error(int listener_fd, void *buf, size_t buf_size,
                               uint64_t id, int32_t err) {
    if (buf_size < sizeof(struct seccomp_notif_resp)) {
        errno = EINVAL;
        return -1;
    }
    memset(buf, 0, buf_size);
    struct seccomp_notif_resp *r = buf;
    r->id = id;
    r->val = 0;
    r->error = -err;
    r->flags = 0; /* never SECCOMP_USER_NOTIF_FLAG_CONTINUE: the answer is the verdict */
    return ioctl(listener_fd, SECCOMP_IOCTL_NOTIF_SEND, buf);
}

int sbx_fence_notif_send_continue(int listener_fd, void *buf, size_t buf_size, uint64_t id) {
    if (buf_size < sizeof(struct seccomp_notif_resp)) {
        errno = EINVAL;
        return -1;
    }
    memset(buf, 0, buf_size);
    struct seccomp_notif_resp *r = buf;
    r->id = id;
    /* Only for on_violation = "log", whose meaning is "allow and record": the call
     * runs as if no filter were there. Never used to allow after inspecting
     * arguments (they could change after the inspection). */
    r->flags = 1; /* SECCOMP_USER_NOTIF_FLAG_CONTINUE */
    return ioctl(listener_fd, SECCOMP_IOCTL_NOTIF_SEND, buf);
}

int sbx_fence_open_no_symlinks(const char *path, int flags, unsigned mode) {
    struct sbx_open_how how = { (uint64_t)(unsigned)flags, mode, SBX_RESOLVE_NO_SYMLINKS };
    return (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
}

long sbx_fence_notif_read_caller(int listener_fd, uint64_t id, uint32_t pid, uint64_t addr, void *buf, size_t len) {
    struct iovec local = { buf, len };
    struct iovec remote = { (void *)(uintptr_t)addr, len };
    ssize_t n = process_vm_readv((pid_t)pid, &local, 1, &remote, 1, 0);
    if (n < 0) return -1;
    if (ioctl(listener_fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) != 0) return -1;
    return (long)n;
}

int sbx_fence_notif_id_valid(int listener_fd, uint64_t id) {
    return ioctl(listener_fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id);
}

int sbx_times_open(int dirfd, const char *path, int nofollow, int directory) {
    int flags = O_PATH | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0) | (directory ? O_DIRECTORY : 0);
    struct sbx_open_how how = { (uint64_t)(unsigned)flags, 0, SBX_RESOLVE_NO_MAGICLINKS };
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

int sbx_times_open_beneath(int rootfd, const char *path) {
    struct sbx_open_how how = { (uint64_t)(unsigned)(O_PATH | O_CLOEXEC | O_DIRECTORY), 0,
                                SBX_RESOLVE_BENEATH | SBX_RESOLVE_NO_SYMLINKS | SBX_RESOLVE_NO_MAGICLINKS };
    return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
}

static const uint32_t sbx_dac_caps = (1u << 1) | (1u << 2) | (1u << 3); /* DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER */

static int sbx_times_effective(uint32_t clear, uint32_t set, uint32_t *before) {
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &hdr, data) < 0) return -1;
    if (before) *before = data[0].effective;
    uint32_t want = (data[0].effective & ~clear) | (set & data[0].permitted);
    if (want == data[0].effective) return 0;
    data[0].effective = want;
    return syscall(SYS_capset, &hdr, data) < 0 ? -1 : 0;
}

int sbx_times_drop_dac(uint32_t *saved) { return sbx_times_effective(sbx_dac_caps, 0, saved); }

int sbx_times_restore_dac(uint32_t saved) { return sbx_times_effective(0, saved & sbx_dac_caps, NULL); }

int sbx_times_open_caller(const char *proc_path) {
    return open(proc_path, O_PATH | O_CLOEXEC);
}

int sbx_times_set(int fd, int64_t atime_sec, int64_t atime_nsec, int64_t mtime_sec, int64_t mtime_nsec) {
    struct timespec ts[2] = { { (time_t)atime_sec, (long)atime_nsec }, { (time_t)mtime_sec, (long)mtime_nsec } };
    return utimensat(fd, "", ts, AT_EMPTY_PATH);
}
