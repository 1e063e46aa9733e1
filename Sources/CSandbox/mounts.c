/*
 * Supervisor-side mount preparation (see sandbox_mounts.h). Runs in the
 * supervisor, never in the child: it may use ordinary libc.
 */
#define _GNU_SOURCE
#include "sandbox_mounts.h"
#include "kernel_abi.h"
#include "sandbox_supervisor.h" /* sbx_harden_root, sbx_dumpable_lock */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#define SBX_MOUNT_ATTR_IDMAP 0x00100000ULL
#define SBX_P_PIDFD 3
/* _IO(PIDFS_IOCTL_MAGIC 0xFF, n): PIDFD_GET_MNT_NAMESPACE (3), PIDFD_GET_NET_NAMESPACE (4) and
 * PIDFD_GET_USER_NAMESPACE (9), Linux 6.11; newer than the libc headers here. */
#define SBX_PIDFD_GET_MNT_NAMESPACE 0xFF03
#define SBX_PIDFD_GET_NET_NAMESPACE 0xFF04
#define SBX_PIDFD_GET_USER_NAMESPACE 0xFF09

int sbx_mounts_open_source(int dirfd, const char *path, uint64_t resolve) {
    if (path[0] == 0) {
        int fd = openat(dirfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
    }
    struct sbx_open_how how = { O_PATH | O_CLOEXEC | O_NOFOLLOW, 0, resolve };
    int fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    return fd < 0 ? -errno : fd;
}

int sbx_mounts_identity(int fd, uint64_t *dev, uint64_t *ino, uint32_t *mode) {
    struct stat st;
    if (fstat(fd, &st) < 0) return -errno;
    *dev = (uint64_t)st.st_dev;
    *ino = (uint64_t)st.st_ino;
    *mode = (uint32_t)st.st_mode;
    return 0;
}

int sbx_mounts_prepare_tree(int source_fd, int readonly, int userns_fd, int *failed_step) {
    *failed_step = 1;
    int tree = (int)syscall(SYS_open_tree, source_fd, "",
                            SBX_OPEN_TREE_CLONE | O_CLOEXEC | SBX_AT_RECURSIVE | AT_EMPTY_PATH);
    if (tree < 0) return -errno;
    if (userns_fd >= 0) {
        /* The idmap first and on its own: the kernel refuses it on a tree whose
         * filesystem cannot be idmapped, and that must not pass for an attr error. */
        *failed_step = 2;
        struct sbx_mount_attr idmap = { SBX_MOUNT_ATTR_IDMAP, 0, 0, (uint64_t)userns_fd };
        if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | SBX_AT_RECURSIVE, &idmap, sizeof idmap) < 0) {
            int e = errno; close(tree); return -e;
        }
    }
    *failed_step = 3;
    uint64_t set = SBX_MOUNT_ATTR_NOSUID | SBX_MOUNT_ATTR_NODEV | (readonly ? SBX_MOUNT_ATTR_RDONLY : 0);
    struct sbx_mount_attr attrs = { set, 0, 0, 0 };
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | SBX_AT_RECURSIVE, &attrs, sizeof attrs) < 0) {
        int e = errno; close(tree); return -e;
    }
    *failed_step = 0;
    return tree;
}

static int write_text(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    int e = errno;
    close(fd);
    if (n < 0) return -e;
    return (size_t)n == len ? 0 : -EIO;
}

int sbx_mounts_write_maps(pid_t pid, const char *uid_map, const char *gid_map) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/uid_map", (int)pid);
    int r = write_text(path, uid_map);
    if (r < 0) return r;
    snprintf(path, sizeof path, "/proc/%d/gid_map", (int)pid);
    return write_text(path, gid_map);
}

int sbx_mounts_write_oom_score_adj(pid_t pid, int value) {
    char path[64], text[16];
    snprintf(path, sizeof path, "/proc/%d/oom_score_adj", (int)pid);
    snprintf(text, sizeof text, "%d", value);
    return write_text(path, text);
}

/* The helper's whole life: every signal blocked (nothing of ours may run on it),
 * bound to its creator's life (a supervisor killed between the clone and the
 * SIGKILL below would otherwise leave it asleep for ever: PDEATHSIG, then a check
 * that the creator did not die before it was armed), then asleep until the SIGKILL.
 * It shares the supervisor's descriptor table (CLONE_FILES), so it holds no
 * descriptor of its own: a copy would keep other runs' pipes and run locks open,
 * and closing one may wait for ever in the file's flush (a server client's stdin on
 * a FUSE mount whose daemon never answers: red team, session 28 — the supervisor
 * waits for the helper under the dumpable lock, so every run of the server waited).
 * It shares the supervisor's memory (CLONE_VM): raw syscalls only, none of which
 * fails here, so it never writes errno, which lives in the cloning thread's TLS.
 * It is root in a user namespace root owns,
 * so any uid-0 process, even one without capabilities, passes the ptrace check on it
 * and could open its memory — the supervisor's — read-write, but for the memory
 * being not dumpable, which a root supervisor's is from the first helper on
 * (sbx_harden_root; red team, session 27). */
static int userns_helper(void *arg) {
    /* By value: the creator's frame is reused while this runs (shared memory). */
    pid_t creator = (pid_t)(intptr_t)arg;
    /* Every bit: glibc's sigfillset leaves out its own two (32, 33), and a handler
     * of the supervisor's on this memory and its thread's TLS must never run. */
    uint64_t all = ~(uint64_t)0;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, sizeof all);
    syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (syscall(SYS_getppid) != creator) syscall(SYS_exit_group, 0);
    for (;;) syscall(SYS_pause);
    return 0;
}

/* The helper is started the way posix_spawn starts a program: CLONE_VM, on a stack
 * in the caller's frame (sbx_mounts_make_userns's), which outlives it. A fork of the
 * supervisor copied its page tables and then took copy-on-write faults on both
 * sides, for a process that only holds a namespace for a moment (issue 16: about
 * half a millisecond of every run with an idmapped bind). */
int sbx_mounts_spawn_userns_helper(void *stack_top, int *pidfd) {
    int pid = clone(userns_helper, stack_top, CLONE_VM | CLONE_FILES | CLONE_NEWUSER | CLONE_PIDFD | SIGCHLD,
                    (void *)(intptr_t)getpid(), pidfd);
    return pid < 0 ? -errno : pid;
}

int sbx_mounts_make_userns(const char *uid_map, const char *gid_map) {
    _Alignas(16) char stack[16384];
    int pidfd = -1;
    int hardened = sbx_harden_root();
    if (hardened < 0) return hardened;
    sbx_dumpable_lock();
    int pid = sbx_mounts_spawn_userns_helper(stack + sizeof stack, &pidfd);
    if (pid < 0) { sbx_dumpable_unlock(); return pid; }
    int result = sbx_mounts_write_maps((pid_t)pid, uid_map, gid_map);
    if (result == 0) {
        result = ioctl(pidfd, SBX_PIDFD_GET_USER_NAMESPACE, 0);
        if (result < 0) result = -errno;
    }
    syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
    siginfo_t si;
    while (syscall(SYS_waitid, SBX_P_PIDFD, pidfd, &si, WEXITED, NULL) < 0 && errno == EINTR) {}
    sbx_dumpable_unlock();
    close(pidfd);
    return result;
}

int sbx_mounts_pidfd_netns(int pidfd) {
    int fd = ioctl(pidfd, SBX_PIDFD_GET_NET_NAMESPACE, 0);
    return fd < 0 ? -errno : fd;
}

int sbx_mounts_pidfd_mntns(int pidfd) {
    int fd = ioctl(pidfd, SBX_PIDFD_GET_MNT_NAMESPACE, 0);
    return fd < 0 ? -errno : fd;
}

int sbx_mounts_birth(int dirfd, const char *name, int64_t *sec, uint32_t *nsec, int *is_birth,
                     uint64_t *dev, uint32_t *mode) {
    struct statx sx;
    int flags = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | (name[0] ? 0 : AT_EMPTY_PATH);
    if (statx(dirfd, name, flags, STATX_TYPE | STATX_BTIME | STATX_CTIME, &sx) < 0)
        return -errno;
    /* The later of birth and change: a rename (moving in an entry made earlier)
     * changes ctime but keeps the birth time. */
    *is_birth = (sx.stx_mask & STATX_BTIME) != 0;
    *sec = sx.stx_ctime.tv_sec;
    *nsec = sx.stx_ctime.tv_nsec;
    if (*is_birth && (sx.stx_btime.tv_sec > *sec || (sx.stx_btime.tv_sec == *sec && sx.stx_btime.tv_nsec > *nsec))) {
        *sec = sx.stx_btime.tv_sec;
        *nsec = sx.stx_btime.tv_nsec;
    }
    *dev = ((uint64_t)sx.stx_dev_major << 32) | sx.stx_dev_minor;
    *mode = sx.stx_mode;
    return 0;
}

int sbx_mounts_open_root(pid_t pid) {
    char path[32];
    snprintf(path, sizeof path, "/proc/%d/root", (int)pid);
    int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int sbx_mounts_is_mount_root(int fd) {
    struct statx stx;
    if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_TYPE, &stx) < 0) return -errno;
    if (!(stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)) return -EOPNOTSUPP;
    return (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) ? 1 : 0;
}

int sbx_mounts_mount_id(int fd, uint64_t *id) {
    struct statx stx;
    if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) < 0) return -errno;
    if (!(stx.stx_mask & STATX_MNT_ID)) return -EOPNOTSUPP;
    *id = stx.stx_mnt_id;
    return 0;
}

#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x00004000U
#endif

int sbx_mounts_unique_id_at(const char *path, uint64_t *id) {
    struct statx stx;
    if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_MNT_ID_UNIQUE, &stx) < 0) return -errno;
    if (!(stx.stx_mask & STATX_MNT_ID_UNIQUE)) return -EOPNOTSUPP;
    *id = stx.stx_mnt_id;
    return 0;
}

int sbx_mounts_in_own_namespace(int fd) {
    uint64_t id;
    int r = sbx_mounts_mount_id(fd, &id);
    if (r < 0) return r;
    int table = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
    if (table < 0) return -errno;
    /* Each line starts with the mount id; only line starts are compared. */
    char want[24];
    int wn = snprintf(want, sizeof want, "%llu ", (unsigned long long)id);
    char buf[8192];
    size_t have = 0;
    int found = 0, at_line_start = 1;
    for (;;) {
        ssize_t n = read(table, buf + have, sizeof buf - have);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { int e = errno; close(table); return -e; }
        size_t end = have + (size_t)n, i = 0;
        while (i < end) {
            if (at_line_start) {
                if (end - i < (size_t)wn && n > 0) break;   /* the id may continue in the next read */
                if (end - i >= (size_t)wn && memcmp(buf + i, want, (size_t)wn) == 0) { found = 1; break; }
                at_line_start = 0;
            }
            char *nl = memchr(buf + i, '\n', end - i);
            if (!nl) { i = end; break; }
            i = (size_t)(nl - buf) + 1;
            at_line_start = 1;
        }
        if (found || n == 0) break;
        have = end - i;
        memmove(buf, buf + i, have);
    }
    close(table);
    return found;
}

int sbx_mounts_events_open(void) {
    int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

long long sbx_fs_type(int fd) {
    struct statfs fs;
    return fstatfs(fd, &fs) == 0 ? (long long)(unsigned long)fs.f_type : -errno;
}

int sbx_mounts_events_changed(int fd) {
    struct pollfd p = { fd, POLLPRI, 0 };
    int r = poll(&p, 1, 0);
    return r > 0 && (p.revents & (POLLPRI | POLLERR)) ? 1 : 0;
}

static void *close_thread(void *arg) {
    struct sbx_background_close *c = arg;
    close(c->fd);
    return NULL;
}

void sbx_close_in_background(struct sbx_background_close *c, int fd) {
    c->fd = fd;
    c->started = pthread_create(&c->thread, NULL, close_thread, c) == 0;
    if (!c->started) close(fd);
}

void sbx_background_close_wait(struct sbx_background_close *c) {
    if (c->started) pthread_join(c->thread, NULL);
    c->started = 0;
}
