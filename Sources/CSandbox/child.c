/*
 * The child runner: everything between clone3 and execve.
 *
 * Rules for this file (see Docs/design.md §4, STYLE.md lesson 5): only async-signal-safe
 * calls — raw syscalls and a few libc functions that are thin syscall wrappers; no
 * malloc, no stdio, no opendir; all memory comes from the spec the supervisor built
 * before clone3 or from fixed buffers on the stack. Every failure reports
 * {step, index, errno} on spec->error_fd and _exit()s.
 *
 * The order of operations is written once, as three step lists at the end of this
 * file (the init's, the reaper's, the payload's), one line per step, each with its
 * own step code and the reason for its place beside it. The supervisor's side of the
 * channels (signal, wait, receive the listener) is in supervisor.c.
 */
#define _GNU_SOURCE
#include "sandbox_child.h"
#include "kernel_abi.h"
#include "sandbox_fence.h"
#include "sandbox_supervisor.h" /* sbx_harden_root, sbx_dumpable_lock */
#include "sandbox_spawner.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#define SBX_SECBIT_NOROOT (1 << 0)
#define SBX_SECBIT_NOROOT_LOCKED (1 << 1)
#define SBX_SECBIT_KEEP_CAPS (1 << 4)

struct sbx_landlock_path_beneath { uint64_t allowed_access; int32_t parent_fd; } __attribute__((packed));

#define SBX_PATH_MAX 4096
#define SBX_MASK_NAME ".sbx-mask"

/* ---- Small async-signal-safe helpers. ---- */

static void put_error(const struct sbx_spec *spec, int step, int index, int err) {
    struct sbx_child_error e = { step, index, err };
    ssize_t n;
    do { n = write(spec->error_fd, &e, sizeof e); } while (n < 0 && errno == EINTR);
}

__attribute__((noreturn))
static void fail(const struct sbx_spec *spec, int step, int index, int err, int code) {
    put_error(spec, step, index, err);
    _exit(code);
}

static size_t str_len(const char *s) { size_t n = 0; while (s[n]) n++; return n; }

static int str_copy(char *dst, size_t cap, const char *a, const char *b) {
    size_t la = str_len(a), lb = b ? str_len(b) : 0;
    if (la + lb + 1 > cap) return -1;
    memcpy(dst, a, la);
    if (b) memcpy(dst + la, b, lb);
    dst[la + lb] = 0;
    return 0;
}

static int write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) { if (errno == EINTR) continue; return -1; }
        buf += n; len -= (size_t)n;
    }
    return 0;
}

static int write_file(const char *path, const char *data) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int r = write_all(fd, data, str_len(data));
    int saved = errno;
    close(fd);
    errno = saved;
    return r;
}

static int sys_open_tree(int dfd, const char *path, unsigned flags) {
    return (int)syscall(SYS_open_tree, dfd, path, flags);
}
static int sys_move_mount(int from_dfd, const char *from, int to_dfd, const char *to, unsigned flags) {
    return (int)syscall(SYS_move_mount, from_dfd, from, to_dfd, to, flags);
}
static int sys_mount_setattr(int dfd, const char *path, unsigned flags, uint64_t set) {
    struct sbx_mount_attr attr = { set, 0, 0, 0 };
    return (int)syscall(SYS_mount_setattr, dfd, path, flags, &attr, sizeof attr);
}
static int sys_openat2(int dfd, const char *path, uint64_t flags, uint64_t resolve) {
    struct sbx_open_how how = { flags, 0, resolve };
    return (int)syscall(SYS_openat2, dfd, path, &how, sizeof how);
}

/* Make a fresh filesystem instance (tmpfs, proc, devpts) as a detached mount. */
static int new_fs(const char *type, const char *const *opts, unsigned attrs) {
    int fsfd = (int)syscall(SYS_fsopen, type, SBX_FSOPEN_CLOEXEC);
    if (fsfd < 0) return -1;
    for (size_t i = 0; opts && opts[i]; i += 2) {
        int r = opts[i + 1]
            ? (int)syscall(SYS_fsconfig, fsfd, SBX_FSCONFIG_SET_STRING, opts[i], opts[i + 1], 0)
            : (int)syscall(SYS_fsconfig, fsfd, SBX_FSCONFIG_SET_FLAG, opts[i], NULL, 0);
        if (r < 0) { int e = errno; close(fsfd); errno = e; return -1; }
    }
    if (syscall(SYS_fsconfig, fsfd, SBX_FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
        int e = errno; close(fsfd); errno = e; return -1;
    }
    int mfd = (int)syscall(SYS_fsmount, fsfd, SBX_FSMOUNT_CLOEXEC, attrs);
    int e = errno;
    close(fsfd);
    errno = e;
    return mfd;
}

/* Parse "key=value,key2=value2,flag" tmpfs options into pairs for fsconfig, in a
 * caller-provided buffer. */
static int split_options(const char *data, char *buf, size_t cap, const char **pairs, size_t max_pairs) {
    size_t n = 0, len = data ? str_len(data) : 0;
    if (len + 1 > cap) { errno = E2BIG; return -1; }
    if (data) memcpy(buf, data, len);
    buf[len] = 0;
    char *p = buf;
    while (*p) {
        if (n + 3 > max_pairs) { errno = E2BIG; return -1; }
        char *key = p, *val = NULL;
        while (*p && *p != ',') { if (*p == '=' && !val) { *p = 0; val = p + 1; } p++; }
        if (*p) *p++ = 0;
        pairs[n++] = key;
        pairs[n++] = val;
    }
    pairs[n] = NULL;
    pairs[n + 1] = NULL;
    return 0;
}

/* ---- Building the new root. ----
 *
 * All paths inside the new root are resolved from `rootfd` one component at a time
 * with O_NOFOLLOW, so a symlink planted in an rw bind (attacker data) can never
 * redirect where a later mount lands. Mount points are created only on filesystems
 * this child made (the root tmpfs and later tmpfs mounts), never inside a host bind:
 * building the sandbox must not write to the host. */

struct builder {
    const struct sbx_spec *spec;
    int rootfd;
    dev_t own_devs[64];   /* st_dev of filesystems we created (may hold mount points) */
    size_t n_own;
    /* The first file mask, once attached (-1 before): each later file mask is a
     * clone of it, read-only and the rest already, instead of the helper file opened,
     * cloned and made read-only again (three system calls fewer per mask; /proc has
     * about twenty). Closed with the helper file's removal. */
    int mask_mnt;
    dev_t mask_dev;   /* the helper file's identity, once mask_mnt is set */
    ino_t mask_ino;
};

static int is_own_dev(const struct builder *b, dev_t dev) {
    for (size_t i = 0; i < b->n_own; i++) if (b->own_devs[i] == dev) return 1;
    return 0;
}

static void add_own_dev(struct builder *b, int fd) {
    struct stat st;
    if (b->n_own < 64 && fstat(fd, &st) == 0) b->own_devs[b->n_own++] = st.st_dev;
}

/* A directory fd open_parent returns: the root's own is lent, not closed. */
static void close_dir(const struct builder *b, int fd) {
    if (fd != b->rootfd) close(fd);
}

/* Open the directory that will contain `dest`'s last component, creating missing
 * directories (only on our own filesystems). Returns an O_PATH fd (close it with
 * close_dir: a top-level `dest` gets the root fd itself, not a dup) and points
 * *leaf into `buf` at the last component. */
static int open_parent(struct builder *b, const char *dest, char *buf, const char **leaf) {
    if (str_copy(buf, SBX_PATH_MAX, dest, NULL) < 0) { errno = ENAMETOOLONG; return -1; }
    char *p = buf;
    while (*p == '/') p++;
    int dirfd = b->rootfd;
    for (;;) {
        char *slash = p;
        while (*slash && *slash != '/') slash++;
        if (!*slash) { *leaf = p; return dirfd; }
        *slash = 0;
        int next = openat(dirfd, p, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0 && errno == ENOENT) {
            struct stat st;
            if (fstat(dirfd, &st) < 0) { int e = errno; close_dir(b, dirfd); errno = e; return -1; }
            if (!is_own_dev(b, st.st_dev)) { close_dir(b, dirfd); errno = EROFS; return -1; }
            if (mkdirat(dirfd, p, 0755) < 0 && errno != EEXIST) { int e = errno; close_dir(b, dirfd); errno = e; return -1; }
            next = openat(dirfd, p, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        int e = errno;
        close_dir(b, dirfd);
        if (next < 0) { errno = e; return -1; }
        dirfd = next;
        p = slash + 1;
        while (*p == '/') p++;
    }
}

/* Create (if needed) and open the mount point `dest` as O_PATH: a directory when
 * `want_dir`, else an empty regular file. */
static int open_mount_point(struct builder *b, const char *dest, int want_dir) {
    char buf[SBX_PATH_MAX];
    const char *leaf;
    if (dest[0] == '/' && dest[1] == 0) return dup(b->rootfd);
    int dirfd = open_parent(b, dest, buf, &leaf);
    if (dirfd < 0) return -1;
    int fd = openat(dirfd, leaf, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        struct stat st;
        if (fstat(dirfd, &st) < 0 || !is_own_dev(b, st.st_dev)) { close_dir(b, dirfd); errno = EROFS; return -1; }
        if (want_dir) {
            if (mkdirat(dirfd, leaf, 0755) < 0 && errno != EEXIST) { int e = errno; close_dir(b, dirfd); errno = e; return -1; }
        } else {
            int f = openat(dirfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
            if (f < 0 && errno != EEXIST) { int e = errno; close_dir(b, dirfd); errno = e; return -1; }
            if (f >= 0) close(f);
        }
        fd = openat(dirfd, leaf, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    }
    int e = errno;
    close_dir(b, dirfd);
    errno = e;
    return fd;
}

static int attach(int mntfd, int targetfd) {
    return sys_move_mount(mntfd, "", targetfd, "", SBX_MOVE_MOUNT_F_EMPTY_PATH | SBX_MOVE_MOUNT_T_EMPTY_PATH);
}

/* Clone the mount tree at `fd` (recursively), make it read-only, put it back on top
 * of itself. Covers submounts: mount_setattr(AT_RECURSIVE). */
static int remount_readonly_at(int fd) {
    int tree = sys_open_tree(fd, "", SBX_OPEN_TREE_CLONE | O_CLOEXEC | SBX_AT_RECURSIVE | AT_EMPTY_PATH);
    if (tree < 0) return -1;
    int r = sys_mount_setattr(tree, "", AT_EMPTY_PATH | SBX_AT_RECURSIVE,
                              SBX_MOUNT_ATTR_RDONLY | SBX_MOUNT_ATTR_NOSUID | SBX_MOUNT_ATTR_NODEV);
    if (r == 0) r = attach(tree, fd);
    int e = errno;
    close(tree);
    errno = e;
    return r;
}

/* Resolve the source in our own mount namespace (a clone cannot be made from the
 * supervisor's fd: that mount belongs to its namespace) with no symlink on the path,
 * and refuse anything but the object the supervisor opened and checked against the
 * plan: a rename or a swapped-in symlink between then and now fails the run instead
 * of redirecting the mount. Working-directory sources resolve beneath our cwd, which
 * is the supervisor's (inherited at clone), never by its path. */
static int do_bind(struct builder *b, const struct sbx_mount_op *op) {
    struct stat st;
    int beneath = (op->flags & SBX_MF_BENEATH_CWD) != 0;
    int src;
    if (beneath && op->source[0] == 0) src = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    else src = sys_openat2(AT_FDCWD, op->source, O_PATH | O_NOFOLLOW | O_CLOEXEC,
                           SBX_RESOLVE_NO_SYMLINKS | (beneath ? SBX_RESOLVE_BENEATH : 0));
    if (src < 0) return -1;
    if (fstat(src, &st) < 0) { int e = errno; close(src); errno = e; return -1; }
    if ((uint64_t)st.st_dev != op->dev || (uint64_t)st.st_ino != op->ino) { close(src); errno = ESTALE; return -1; }
    int tree = sys_open_tree(src, "", SBX_OPEN_TREE_CLONE | O_CLOEXEC | SBX_AT_RECURSIVE | AT_EMPTY_PATH);
    int e = errno;
    close(src);
    errno = e;
    if (tree < 0) return -1;
    uint64_t attrs = SBX_MOUNT_ATTR_NOSUID | SBX_MOUNT_ATTR_NODEV;
    if (op->flags & SBX_MF_RDONLY) attrs |= SBX_MOUNT_ATTR_RDONLY;
    int r = sys_mount_setattr(tree, "", AT_EMPTY_PATH | SBX_AT_RECURSIVE, attrs);
    if (r == 0) {
        int target = open_mount_point(b, op->dest, S_ISDIR(st.st_mode));
        if (target < 0) r = -1;
        else { r = attach(tree, target); e = errno; close(target); errno = e; }
    }
    e = errno;
    close(tree);
    errno = e;
    return r;
}

static int do_tmpfs_at(struct builder *b, const char *dest, const char *data, unsigned attrs, int readonly_after) {
    char optbuf[256];
    const char *pairs[32];
    if (split_options(data, optbuf, sizeof optbuf, pairs, 30) < 0) return -1;
    int mnt = new_fs("tmpfs", pairs, attrs);
    if (mnt < 0) return -1;
    add_own_dev(b, mnt);
    int target = open_mount_point(b, dest, 1);
    int r = target < 0 ? -1 : attach(mnt, target);
    if (r == 0 && readonly_after) r = sys_mount_setattr(target, "", AT_EMPTY_PATH, SBX_MOUNT_ATTR_RDONLY);
    int e = errno;
    if (target >= 0) close(target);
    close(mnt);
    errno = e;
    return r;
}

/* Bind one host device node (files only; mknod is not possible in a user ns). */
static int bind_dev_node(struct builder *b, const char *name) {
    char host[64], inside[64];
    if (str_copy(host, sizeof host, "/dev/", name) < 0 || str_copy(inside, sizeof inside, "/dev/", name) < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int tree = sys_open_tree(AT_FDCWD, host, SBX_OPEN_TREE_CLONE | O_CLOEXEC);
    if (tree < 0) return -1;
    int r = sys_mount_setattr(tree, "", AT_EMPTY_PATH, SBX_MOUNT_ATTR_NOSUID | SBX_MOUNT_ATTR_NOEXEC);
    int target = r == 0 ? open_mount_point(b, inside, 0) : -1;
    if (target < 0) r = -1; else r = attach(tree, target);
    int e = errno;
    if (target >= 0) close(target);
    close(tree);
    errno = e;
    return r;
}

static int make_symlink(struct builder *b, const char *target, const char *dest) {
    char buf[SBX_PATH_MAX];
    const char *leaf;
    int dirfd = open_parent(b, dest, buf, &leaf);
    if (dirfd < 0) return -1;
    struct stat st;
    int r;
    if (fstat(dirfd, &st) < 0) r = -1;
    else if (!is_own_dev(b, st.st_dev)) { errno = EROFS; r = -1; }
    else r = symlinkat(target, dirfd, leaf);
    int e = errno;
    close_dir(b, dirfd);
    errno = e;
    return r;
}

static int do_dev(struct builder *b, const char *dest) {
    if (dest[0] != '/' || dest[1] != 'd' || str_len(dest) != 4) { errno = EINVAL; return -1; }
    if (do_tmpfs_at(b, "/dev", "mode=0755,size=64k", SBX_MOUNT_ATTR_NOSUID | SBX_MOUNT_ATTR_NOEXEC, 0) < 0) return -1;
    static const char *const nodes[] = { "null", "zero", "full", "random", "urandom", "tty" };
    for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++)
        if (bind_dev_node(b, nodes[i]) < 0) return -1;
    /* A private devpts instance: ptys opened inside cannot reach the host's. */
    /* max: ptys count against the host-wide kernel.pty.max; a run gets a bounded share. */
    static const char *const pts_opts[] = { "newinstance", NULL, "ptmxmode", "0666", "mode", "620", "max", "64", NULL, NULL };
    int pts = new_fs("devpts", pts_opts, SBX_MOUNT_ATTR_NOSUID | SBX_MOUNT_ATTR_NOEXEC);
    if (pts < 0) return -1;
    int target = open_mount_point(b, "/dev/pts", 1);
    int r = target < 0 ? -1 : attach(pts, target);
    int e = errno;
    if (target >= 0) close(target);
    close(pts);
    errno = e;
    if (r < 0) return -1;
    if (do_tmpfs_at(b, "/dev/shm", "mode=1777", SBX_MOUNT_ATTR_NOSUID | SBX_MOUNT_ATTR_NODEV, 0) < 0) return -1;
    if (make_symlink(b, "pts/ptmx", "/dev/ptmx") < 0) return -1;
    if (make_symlink(b, "/proc/self/fd", "/dev/fd") < 0) return -1;
    if (make_symlink(b, "/proc/self/fd/0", "/dev/stdin") < 0) return -1;
    if (make_symlink(b, "/proc/self/fd/1", "/dev/stdout") < 0) return -1;
    if (make_symlink(b, "/proc/self/fd/2", "/dev/stderr") < 0) return -1;
    return 0;
}

/* Hide `fd` (a file or directory inside the new root). */
static int mask_at(struct builder *b, int fd) {
    struct stat st;
    if (fstat(fd, &st) < 0) return -1;
    /* Already a mask (the helper file itself: a second path, a link in a writable
     * bind, or a mask the policy names twice, resolves to one made before). Hidden
     * already, and a mask on it would cover the helper file's last name, whose
     * removal then failed the run (EBUSY) — a run could plant such a link for every
     * later run in its directory (red team, session 41). */
    if (b->mask_mnt >= 0 && st.st_dev == b->mask_dev && st.st_ino == b->mask_ino) return 0;
    int mnt;
    if (S_ISDIR(st.st_mode)) {
        static const char *const opts[] = { "mode", "0000", "size", "4k", NULL, NULL };
        mnt = new_fs("tmpfs", opts, SBX_MOUNT_ATTR_RDONLY | SBX_MOUNT_ATTR_NOSUID | SBX_MOUNT_ATTR_NODEV | SBX_MOUNT_ATTR_NOEXEC);
    } else if (b->mask_mnt >= 0) {
        /* A clone of the first file mask keeps its attributes. */
        mnt = sys_open_tree(b->mask_mnt, "", SBX_OPEN_TREE_CLONE | O_CLOEXEC | AT_EMPTY_PATH);
    } else {
        /* An empty mode-000 file on the root tmpfs, bound read-only over the target. */
        int f = openat(b->rootfd, SBX_MASK_NAME, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0);
        if (f < 0) return -1;
        close(f);
        mnt = sys_open_tree(b->rootfd, SBX_MASK_NAME, SBX_OPEN_TREE_CLONE | O_CLOEXEC);
        if (mnt >= 0 && sys_mount_setattr(mnt, "", AT_EMPTY_PATH,
                SBX_MOUNT_ATTR_RDONLY | SBX_MOUNT_ATTR_NOSUID | SBX_MOUNT_ATTR_NODEV | SBX_MOUNT_ATTR_NOEXEC) < 0) {
            int e = errno; close(mnt); errno = e; return -1;
        }
    }
    if (mnt < 0) return -1;
    int r = attach(mnt, fd);
    int e = errno;
    /* The first file mask stays open for the others to be cloned from. */
    struct stat helper;
    if (r == 0 && !S_ISDIR(st.st_mode) && b->mask_mnt < 0 && fstat(mnt, &helper) == 0) {
        b->mask_mnt = mnt;
        b->mask_dev = helper.st_dev;
        b->mask_ino = helper.st_ino;
    } else {
        close(mnt);
    }
    errno = e;
    return r;
}

/* Resolve a path inside the new root the way the sandbox will (symlinks stay inside). */
static int open_inside(struct builder *b, const char *dest) {
    while (*dest == '/') dest++;
    if (!*dest) return dup(b->rootfd);
    return sys_openat2(b->rootfd, dest, O_PATH | O_CLOEXEC, SBX_RESOLVE_IN_ROOT | SBX_RESOLVE_NO_MAGICLINKS);
}

/* Like open_inside, but the last component itself is not followed (O_PATH of a
 * symlink opens the link). */
static int open_inside_nofollow(struct builder *b, const char *dest) {
    while (*dest == '/') dest++;
    if (!*dest) return dup(b->rootfd);
    return sys_openat2(b->rootfd, dest, O_PATH | O_NOFOLLOW | O_CLOEXEC, SBX_RESOLVE_IN_ROOT | SBX_RESOLVE_NO_MAGICLINKS);
}

static int do_proc(struct builder *b, const char *dest) {
    int mnt = new_fs("proc", NULL, SBX_MOUNT_ATTR_NOSUID | SBX_MOUNT_ATTR_NODEV | SBX_MOUNT_ATTR_NOEXEC);
    if (mnt < 0) return -1;
    int target = open_mount_point(b, dest, 1);
    int r = target < 0 ? -1 : attach(mnt, target);
    int e = errno;
    close(mnt);
    if (target >= 0) close(target);
    errno = e;
    if (r < 0) return -1;
    /* Kernel knobs read-only (as runc and Docker) and host-wide kernel information
     * hidden (an empty unreadable file or directory over each; absent ones skipped).
     * Docker's list (moby's default masked paths): kcore keys timer_list timer_stats sched_debug
     * latency_stats interrupts acpi asound scsi. Added here: kallsyms (symbol
     * addresses); kpageflags kpagecount kpagecgroup (the state of every physical
     * page); slabinfo vmallocinfo (kernel heap layout and addresses); iomem ioports
     * (physical address map); buddyinfo pagetypeinfo zoneinfo (page-allocator state,
     * used to time page-level exploits); kmsg (the host's kernel log); config.gz (the
     * host kernel's build configuration). Docs/status.md keeps this list. */
    static const char *const readonly[] = { "sys", "sysrq-trigger", "irq", "bus", "fs" };
    static const char *const masked[] = {
        "kcore", "keys", "timer_list", "timer_stats", "sched_debug", "latency_stats", "interrupts",
        "acpi", "asound", "scsi", "kallsyms", "kpageflags", "kpagecount", "kpagecgroup", "slabinfo",
        "vmallocinfo", "iomem", "ioports", "buddyinfo", "pagetypeinfo", "zoneinfo", "kmsg", "config.gz",
        "cmdline",   /* the host kernel's command line */
    };
    char path[SBX_PATH_MAX];
    for (size_t i = 0; i < sizeof readonly / sizeof readonly[0]; i++) {
        if (str_copy(path, sizeof path, dest, "/") < 0) { errno = ENAMETOOLONG; return -1; }
        size_t l = str_len(path);
        if (str_copy(path + l, sizeof path - l, readonly[i], NULL) < 0) { errno = ENAMETOOLONG; return -1; }
        int fd = open_inside(b, path);
        if (fd < 0) { if (errno == ENOENT) continue; return -1; }
        r = remount_readonly_at(fd);
        e = errno; close(fd); errno = e;
        if (r < 0) return -1;
    }
    for (size_t i = 0; i < sizeof masked / sizeof masked[0]; i++) {
        if (str_copy(path, sizeof path, dest, "/") < 0) { errno = ENAMETOOLONG; return -1; }
        size_t l = str_len(path);
        if (str_copy(path + l, sizeof path - l, masked[i], NULL) < 0) { errno = ENAMETOOLONG; return -1; }
        int fd = open_inside(b, path);
        if (fd < 0) { if (errno == ENOENT) continue; return -1; }
        r = mask_at(b, fd);
        e = errno; close(fd); errno = e;
        if (r < 0) return -1;
    }
    return 0;
}

/* A read-only file holding `content` (resolv.conf, hosts): written on a small tmpfs
 * of its own that only this file is cloned from, so nothing else of it is visible. */
static int do_file(struct builder *b, const char *dest, const char *content) {
    static const char *const opts[] = { "mode", "0755", "size", "64k", NULL, NULL };
    int mnt = new_fs("tmpfs", opts, SBX_MOUNT_ATTR_NOSUID | SBX_MOUNT_ATTR_NODEV | SBX_MOUNT_ATTR_NOEXEC);
    if (mnt < 0) return -1;
    int f = openat(mnt, "file", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444);
    int r = f < 0 ? -1 : write_all(f, content, str_len(content));
    int e = errno;
    if (f >= 0) close(f);
    int tree = r < 0 ? -1 : sys_open_tree(mnt, "file", SBX_OPEN_TREE_CLONE | O_CLOEXEC);
    if (r == 0 && tree < 0) { r = -1; e = errno; }
    close(mnt);
    if (r == 0 && sys_mount_setattr(tree, "", AT_EMPTY_PATH, SBX_MOUNT_ATTR_RDONLY | SBX_MOUNT_ATTR_NOSUID
                                    | SBX_MOUNT_ATTR_NODEV | SBX_MOUNT_ATTR_NOEXEC) < 0) { r = -1; e = errno; }
    int target = r == 0 ? open_mount_point(b, dest, 0) : -1;
    if (r == 0 && target < 0) { r = -1; e = errno; }
    if (r == 0 && attach(tree, target) < 0) { r = -1; e = errno; }
    if (target >= 0) close(target);
    if (tree >= 0) close(tree);
    errno = e;
    return r;
}

static int apply_mount(struct builder *b, const struct sbx_mount_op *op) {
    switch (op->kind) {
    case SBX_MOUNT_BIND:
        return (op->flags & SBX_MF_SKIP) ? 0 : do_bind(b, op);
    case SBX_MOUNT_TMPFS:
        return do_tmpfs_at(b, op->dest, op->data ? op->data : "mode=0755",
                           SBX_MOUNT_ATTR_NOSUID | SBX_MOUNT_ATTR_NODEV, (op->flags & SBX_MF_RDONLY) != 0);
    case SBX_MOUNT_PROC:
        return do_proc(b, op->dest);
    case SBX_MOUNT_DEV:
        return do_dev(b, op->dest);
    case SBX_MOUNT_SYMLINK:
        return make_symlink(b, op->source, op->dest);
    case SBX_MOUNT_PROTECT: {
        /* The last component must not be a symlink: the link lives in the writable
         * parent and could be swapped for a writable directory after we protect
         * its target. (Intermediate components resolve inside the new root.) */
        int fd = open_inside_nofollow(b, op->dest);
        if (fd < 0) return errno == ENOENT && (op->flags & SBX_MF_OPTIONAL) ? 0 : -1;
        struct stat lst;
        if (fstat(fd, &lst) < 0 || S_ISLNK(lst.st_mode)) { close(fd); errno = ELOOP; return -1; }
        int r = remount_readonly_at(fd);
        int e = errno; close(fd); errno = e;
        return r;
    }
    case SBX_MOUNT_PIN: {
        /* A real directory (no symlink as its last component), bound onto itself. */
        int fd = open_inside_nofollow(b, op->dest);
        if (fd < 0) return -1;
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode)) { close(fd); errno = ENOTDIR; return -1; }
        int tree = sys_open_tree(fd, "", SBX_OPEN_TREE_CLONE | O_CLOEXEC | SBX_AT_RECURSIVE | AT_EMPTY_PATH);
        int r = tree < 0 ? -1 : attach(tree, fd);
        int e = errno;
        if (tree >= 0) close(tree);
        close(fd);
        errno = e;
        return r;
    }
    case SBX_MOUNT_MASK: {
        int fd = open_inside(b, op->dest);
        if (fd < 0) return errno == ENOENT ? 0 : -1;
        int r = mask_at(b, fd);
        int e = errno; close(fd); errno = e;
        return r;
    }
    case SBX_MOUNT_MOVE_FD: {
        struct stat st;
        if (fstat(op->fd, &st) < 0) return -1;
        int target = open_mount_point(b, op->dest, S_ISDIR(st.st_mode));
        if (target < 0) return -1;
        int r = attach(op->fd, target);
        int e = errno; close(target); errno = e;
        return r;
    }
    case SBX_MOUNT_FILE:
        return do_file(b, op->dest, op->data ? op->data : "");
    }
    errno = EINVAL;
    return -1;
}

/* clone3(CLONE_PIDFD [| CLONE_INTO_CGROUP] | flags); where clone3 is refused with
 * ENOSYS (Docker's default seccomp profile does that, so that runtimes fall back to
 * clone, whose namespace flags it can filter) and neither namespaces nor a cgroup
 * are asked for, the legacy clone(CLONE_PIDFD), which stores the pidfd through its
 * parent_tid argument on every architecture. Returns the pid (0 in the child) or
 * -errno. */
static long clone_with_pidfd(uint64_t flags, int cgroup_fd, int *pidfd) {
    struct sbx_clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = flags | CLONE_PIDFD;
    args.pidfd = (uint64_t)(uintptr_t)pidfd;
    /* CLONE_PARENT (the spawner): the child signals our parent with our own exit
     * signal (SIGCHLD), and clone3 refuses an exit_signal of its own. */
    args.exit_signal = (flags & CLONE_PARENT) ? 0 : SIGCHLD;
    if (cgroup_fd >= 0) {
        args.flags |= SBX_CLONE_INTO_CGROUP;
        args.cgroup = (uint64_t)cgroup_fd;
    }
    long pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid >= 0) return pid;
    if (errno != ENOSYS || flags != 0 || cgroup_fd >= 0) return -errno;
    pid = syscall(SYS_clone, (unsigned long)(CLONE_PIDFD | SIGCHLD), 0UL, pidfd, 0UL, 0UL);
    return pid < 0 ? -errno : pid;
}

/* ---- What the steps share. ---- */

/* The state one step leaves for a later one, on the init's stack (the payload gets
 * its own copy at the fork: payload_main). A step returns 0, or -1 with errno set and, when it
 * failed at one item of a list (a mount, an rlimit, a capability), that item in
 * `index`; the step runner reports {step, index, errno} and _exit()s. */
struct child {
    const struct sbx_spec *spec;
    int index;                 /* the failing item, or -1 */
    int exit_code;             /* 125; execve sets 126/127 */
    int keep[SBX_MAX_KEEP];    /* descriptors the init keeps across its first close */
    size_t n_keep;
    struct builder b;          /* the new root while it is built */
    int cap_last;              /* highest capability the kernel knows, or -1 (caps off) */
    int listener;              /* the seccomp notify listener, or -1 */
    sigset_t reaped;           /* the signals PID 1 waits for */
    long payload_pid;
    int payload_pidfd;
    long reaper_pid;           /* nested: the payload's parent, for its PDEATHSIG check */
    int children_fd;           /* nested: the reaper's /proc/thread-self/children, or -1 */
    int signal_anchored;       /* nested: the reaper holds a signal-scoped Landlock domain */
    int exec_run_fd;           /* [binary]: what execveat runs (check_executable) */
    void *payload_stack;       /* the payload's stack (map_payload_stack), until the fork */
    size_t payload_stack_len;
    sbx_cpumask affinity;      /* the init's CPU affinity, while it is pinned for the fork */
    int affinity_pinned;
};

struct step {
    int code;                  /* enum sbx_step, reported when `run` fails */
    int (*run)(struct child *c);
};

static int close_all_except(const int *keep, size_t n) {
    /* Sort the few fds to keep (insertion sort), then close the gaps. A list that
     * does not fit is refused, not cut short: a descriptor closed by mistake would
     * surface later as an unrelated EBADF. */
    if (n > SBX_MAX_KEEP) { errno = E2BIG; return -1; }
    int sorted[SBX_MAX_KEEP];
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (keep[i] < 3) continue;
        int v = keep[i];
        size_t j = m;
        while (j > 0 && sorted[j - 1] > v) { sorted[j] = sorted[j - 1]; j--; }
        sorted[j] = v;
        m++;
    }
    unsigned int lo = 3;
    for (size_t i = 0; i < m; i++) {
        if ((unsigned)sorted[i] > lo && syscall(SYS_close_range, lo, (unsigned)sorted[i] - 1, 0) < 0) return -1;
        if ((unsigned)sorted[i] + 1 > lo) lo = (unsigned)sorted[i] + 1;
    }
    return syscall(SYS_close_range, lo, ~0U, 0) < 0 ? -1 : 0;
}

/* ---- The sandbox init's steps (PID 1 of the new pid namespace). ---- */

static int reset_signals(struct child *c) {
    (void)c;
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < 65; s++) {
        if (s == SIGKILL || s == SIGSTOP) continue;
        /* glibc's own signals (SIGCANCEL, SIGSETXID), below SIGRTMIN: sigaction
         * refuses them, and nothing of the supervisor's handlers survives execve. */
        if (s > 31 && s < SIGRTMIN) continue;
        if (sigaction(s, &dfl, NULL) < 0) { c->index = s; return -1; }
    }
    sigset_t none;
    sigemptyset(&none);
    return sigprocmask(SIG_SETMASK, &none, NULL);
}

/* The spec's stdio descriptors onto 0, 1, 2 (without CLOEXEC: the command inherits
 * them); the originals are closed with the other inherited descriptors next. One
 * that already sits at 0–2 is first moved above 2, so no dup3 overwrites a
 * descriptor a later one still needs. */
static int install_stdio(struct child *c) {
    int fds[3];
    for (int i = 0; i < 3; i++) {
        fds[i] = c->spec->stdio_fds[i];
        if (fds[i] >= 0 && fds[i] < 3 && fds[i] != i) {
            fds[i] = fcntl(fds[i], F_DUPFD, 3);
            if (fds[i] < 0) { c->index = i; return -1; }
        }
    }
    for (int i = 0; i < 3; i++) {
        if (fds[i] < 0 || fds[i] == i) continue;
        if (dup3(fds[i], i, 0) < 0) { c->index = i; return -1; }
    }
    return 0;
}

static int list_kept_fds(struct child *c) {
    const struct sbx_spec *spec = c->spec;
    size_t n_moved = 0;
    for (size_t i = 0; i < spec->n_mounts; i++)
        if (spec->mounts[i].kind == SBX_MOUNT_MOVE_FD && spec->mounts[i].fd >= 0) n_moved++;
    size_t want = 8 + spec->n_cgroup_join_fds + n_moved;
    if (want > SBX_MAX_KEEP) { c->index = (int)want; errno = E2BIG; return -1; }
    size_t nk = 0;
    c->keep[nk++] = spec->sync_fd; c->keep[nk++] = spec->error_fd; c->keep[nk++] = spec->status_fd;
    c->keep[nk++] = spec->landlock_fd; c->keep[nk++] = spec->notify_sock;
    c->keep[nk++] = spec->exec_fd; c->keep[nk++] = spec->script_fd;
    c->keep[nk++] = spec->command_fd;
    for (size_t i = 0; i < spec->n_cgroup_join_fds; i++) c->keep[nk++] = spec->cgroup_join_fds[i];
    for (size_t i = 0; i < spec->n_mounts; i++)
        if (spec->mounts[i].kind == SBX_MOUNT_MOVE_FD && spec->mounts[i].fd >= 0) c->keep[nk++] = spec->mounts[i].fd;
    c->n_keep = nk;
    return 0;
}

static int close_inherited_fds(struct child *c) {
    return close_all_except(c->keep, c->n_keep);
}

/* Nested, the signal is one the reaper ends the run on (it blocks it before the
 * fork): a plain SIGKILL would leave the command's processes behind, with no PID
 * namespace to end with it. */
static int die_with_supervisor(struct child *c) {
    return prctl(PR_SET_PDEATHSIG, c->spec->nested ? SBX_SIGNAL_END_RUN : SIGKILL, 0, 0, 0);
}

/* EOF means the supervisor died (or gave up) before the go: nobody reads a report
 * then, so the init just leaves. */
static int wait_for_supervisor(struct child *c) {
    char go;
    ssize_t n;
    do { n = read(c->spec->sync_fd, &go, 1); } while (n < 0 && errno == EINTR);
    if (n == 0) _exit(125);
    if (n < 0) return -1;
    close(c->spec->sync_fd);
    return 0;
}

/* cgroup v1: join each controller by writing "0" (= this thread) to the `tasks` files
 * the supervisor opened; no PID is ever written by the supervisor. We are single-
 * threaded here, so this thread is the process; a one-thread move of the caller skips
 * the kernel's global threadgroup rwsem and its RCU grace period (CgroupV1.swift). */
static int join_cgroups_v1(struct child *c) {
    const struct sbx_spec *spec = c->spec;
    for (size_t i = 0; i < spec->n_cgroup_join_fds; i++) {
        if (write_all(spec->cgroup_join_fds[i], "0", 1) < 0) { c->index = (int)i; return -1; }
        close(spec->cgroup_join_fds[i]);
    }
    return 0;
}

/* The cgroup namespace from clone3 was rooted where we were born; re-root it at the
 * run's own cgroups so /proc/self/cgroup inside shows "/", not the host's layout.
 * (v2 needs nothing: CLONE_INTO_CGROUP placed us before the namespace.) */
static int reroot_cgroup_namespace(struct child *c) {
    if (c->spec->n_cgroup_join_fds == 0) return 0;
    return unshare(CLONE_NEWCGROUP);
}

/* Rootless: map ourselves (we may write our own maps once, for our own uid). */
static int map_own_ids(struct child *c) {
    const struct sbx_spec *spec = c->spec;
    if (!spec->uid_map) return 0;
    c->index = 0;
    if (write_file("/proc/self/setgroups", "deny") < 0) return -1;
    c->index = 1;
    if (write_file("/proc/self/uid_map", spec->uid_map) < 0) return -1;
    c->index = 2;
    return write_file("/proc/self/gid_map", spec->gid_map);
}

static int set_hostname(struct child *c) {
    return sethostname(c->spec->hostname, str_len(c->spec->hostname));
}

int sbx_loopback_up(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, "lo", 3);
    int r = ioctl(s, SIOCGIFFLAGS, &ifr);
    if (r == 0) { ifr.ifr_flags |= IFF_UP; r = ioctl(s, SIOCSIFFLAGS, &ifr); }
    int e = errno;
    close(s);
    errno = e;
    return r;
}

static int bring_up_loopback(struct child *c) {
    return c->spec->loopback_up ? sbx_loopback_up() : 0;
}

static int make_mounts_private(struct child *c) {
    (void)c;
    return mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
}

static int mount_root_tmpfs(struct child *c) {
    static const char *const root_opts[] = { "mode", "0755", "size", "1m", NULL, NULL };
    c->b.spec = c->spec;
    c->b.rootfd = -1;
    c->b.n_own = 0;
    c->b.mask_mnt = -1;
    int mnt = new_fs("tmpfs", root_opts, SBX_MOUNT_ATTR_NOSUID | SBX_MOUNT_ATTR_NODEV);
    if (mnt < 0) return -1;
    add_own_dev(&c->b, mnt);
    /* Attached on the staging directory of this (private) namespace's copy of the
     * host tree; the mount's own descriptor then names the new root, with no second
     * lookup of a path that is shared by every run. */
    if (sys_move_mount(mnt, "", AT_FDCWD, c->spec->staging, SBX_MOVE_MOUNT_F_EMPTY_PATH) < 0) {
        int e = errno;
        close(mnt);
        errno = e;
        return -1;
    }
    c->b.rootfd = mnt;
    return 0;
}

static int apply_mounts(struct child *c) {
    for (size_t i = 0; i < c->spec->n_mounts; i++)
        if (apply_mount(&c->b, &c->spec->mounts[i]) < 0) { c->index = (int)i; return -1; }
    return 0;
}

/* The helper file for masks must not stay visible; the binds keep its inode. The
 * first mask's descriptor goes with it. */
static int remove_mask_helper(struct child *c) {
    if (c->b.mask_mnt >= 0) { close(c->b.mask_mnt); c->b.mask_mnt = -1; }
    return unlinkat(c->b.rootfd, SBX_MASK_NAME, 0) < 0 && errno != ENOENT ? -1 : 0;
}

/* The root itself read-only: only listed rw paths and tmpfs mounts are writable. */
static int make_root_readonly(struct child *c) {
    return sys_mount_setattr(c->b.rootfd, "", AT_EMPTY_PATH, SBX_MOUNT_ATTR_RDONLY);
}

/* pivot_root(".", ".") stacks the old root under the new one; detaching it leaves
 * nothing of the host reachable (no /oldroot directory needed). */
static int pivot_into_root(struct child *c) {
    if (fchdir(c->b.rootfd) < 0 || syscall(SYS_pivot_root, ".", ".") < 0
        || umount2(".", MNT_DETACH) < 0 || chdir("/") < 0) return -1;
    close(c->b.rootfd);
    c->b.rootfd = -1;
    return 0;
}

/* The stack the payload runs on until its execve (fork_payload shares the init's
 * memory with it): mapped BEFORE the rlimits, since a small `as` or `data` limit
 * would refuse the mapping (a fork is not held to them). Its lowest page is left
 * inaccessible, so an overflow faults in the payload instead of writing over the
 * init's memory. 64 KiB: the payload's deepest step (the PATH search's buffer)
 * needs under 8. */
#define SBX_PAYLOAD_STACK_SIZE (64 * 1024)
/* Built ahead (a server's warm path): the root is built and pivoted into; wait here
 * for the command this sandbox runs, which no step before needed. The init's spec
 * becomes a copy with the command's fields (its memory is the init's own: a copy of
 * the spawner's or the supervisor's), and the command's stdio goes onto 0, 1, 2 as
 * install_stdio does for a spec that carries them; the originals are closed (the
 * executable and script descriptors stay for the payload's steps). EOF: the sandbox
 * was let go unused; nobody reads a report, so the init leaves. */
static struct sbx_spec commanded;

/* The command the sandbox was built with (a placeholder), its environment and
 * search path (the request's that had it built), zeroed once the real ones are in:
 * the reaper keeps its memory for the whole run. */
static void scrub(char *const *v) {
    for (size_t i = 0; v && v[i]; i++) memset(v[i], 0, str_len(v[i]));
}

static int receive_command(struct child *c) {
    int sock = c->spec->command_fd;
    if (sock < 0) return 0;
    /* `ps` tells a sandbox waiting for its command from the spawner it was copied
     * from; the reaper names itself "sandbox-init" once it has one. */
    static const char name[] = "sandbox-ahead";
    (void)prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
    /* The root is built: the supervisor records what it mounted (seen from the host)
     * before it offers the sandbox, and compares at the take. */
    if (send(sock, "R", 1, MSG_NOSIGNAL) != 1) {
        if (errno == EPIPE) _exit(125);   /* let go already */
        return -1;
    }
    commanded = *c->spec;
    int r;
    do { r = sbx_command_receive(sock, &commanded); } while (r == -EINTR);
    if (r == -EPIPE) _exit(125);
    if (r < 0) { errno = -r; return -1; }
    close(sock);
    scrub(c->spec->argv);
    scrub(c->spec->envp);
    if (c->spec->search_path) memset((char *)c->spec->search_path, 0, str_len(c->spec->search_path));
    commanded.command_fd = -1;
    c->spec = &commanded;
    if (install_stdio(c) < 0) return -1;
    for (int i = 0; i < 3; i++) if (commanded.stdio_fds[i] > 2) close(commanded.stdio_fds[i]);
    return 0;
}

static int map_payload_stack(struct child *c) {
    size_t guard = (size_t)getpagesize();
    size_t len = guard + SBX_PAYLOAD_STACK_SIZE;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (p == MAP_FAILED) return -1;
    if (mprotect(p, guard, PROT_NONE) < 0) { int e = errno; munmap(p, len); errno = e; return -1; }
    c->payload_stack = p;
    c->payload_stack_len = len;
    return 0;
}

static int set_rlimits(struct child *c) {
    const struct sbx_spec *spec = c->spec;
    for (size_t i = 0; i < spec->n_rlimits; i++) {
        struct rlimit rl = { spec->rlimits[i].soft, spec->rlimits[i].hard };
        if (setrlimit(spec->rlimits[i].resource, &rl) < 0) { c->index = (int)i; return -1; }
    }
    return 0;
}

/* Nested: the policy's rlimits are the payload's, never the reaper's. The reaper is
 * what ends the run's leftovers, and the command chooses how much CPU it spends (every
 * orphan is its child): with rlimits.cpu on the reaper (soft = hard, so SIGKILL), a
 * command that kept it busy killed it and its daemons outlived the run (red team 5,
 * A). Namespaced, the init's death ends the PID namespace, so it keeps them. BEFORE
 * the capabilities go: a hard limit above the invoker's needs CAP_SYS_RESOURCE. */
static int set_payload_rlimits(struct child *c) {
    return c->spec->nested ? set_rlimits(c) : 0;
}

/* Under memory pressure the OOM killer takes the largest process at the same
 * oom_score_adj. A command that keeps each of its processes small (memory in memfds)
 * made the supervisor its first victim and the nested reaper its second, before the
 * reaper swept, so a daemon outlived the run (red team 5, B). At +1000 every process
 * of the command is chosen before any at 0: the supervisor (and so the result) and
 * the reaper outlive a command's OOM. Raising needs no privilege; with
 * CAP_SYS_RESOURCE (a root invoker) it also sets oom_score_adj_min, so it cannot be
 * lowered again; nested, Landlock grants nothing under /proc anyway. */
static int write_oom_score_adj(void) {
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int r = write_all(fd, "1000", 4);
    int saved = errno;
    close(fd);
    errno = saved;
    return r < 0 ? -1 : 0;
}

/* Nested: the payload only — the reaper must outlive the command to sweep.
 * (Namespaced, the supervisor writes the init's before the sync byte, and the payload
 * inherits it: a root supervisor's init that took a leased uid is not dumpable, so
 * its own /proc files are not its to write.) */
static int prefer_payload_for_oom(struct child *c) {
    return c->spec->nested ? write_oom_score_adj() : 0;
}

/* ---- PID 1 becomes the reaper. ---- */

static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };

/* The reaper is a copy of the supervisor that never execs: its /proc/1/cmdline is the
 * supervisor's argv (the policy path, the --result path), readable by anything in the
 * sandbox. Overwrite its copy of those bytes (copy-on-write: the supervisor's own are
 * untouched) with a name of its own and NULs, before the payload exists. */
static int hide_supervisor_argv(struct child *c) {
    static const char name[] = "sandbox-init";
    if (prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0) < 0) return -1;
    if (!c->spec->argv_area || c->spec->argv_area_len == 0) return 0;
    char *p = c->spec->argv_area;
    size_t n = c->spec->argv_area_len;
    for (size_t i = 0; i < n; i++) p[i] = (i + 1 < n && i < sizeof name - 1) ? name[i] : '\0';
    return 0;
}

/* Blocked before the fork so no signal is lost; the payload unblocks its copy.
 * SIGCHLD with SA_NOCLDSTOP: a child's stop or continue sends nothing, so only an
 * exit (which costs the command a fork) wakes the reaper — stop/continue loops of
 * its orphans cannot burn its CPU (red team 5, A). execve clears the flag for the
 * command. */
static int block_reaped_signals(struct child *c) {
    struct sigaction chld;
    memset(&chld, 0, sizeof chld);
    chld.sa_handler = SIG_DFL;
    chld.sa_flags = SA_NOCLDSTOP;
    if (sigaction(SIGCHLD, &chld, NULL) < 0) return -1;
    sigemptyset(&c->reaped);
    sigaddset(&c->reaped, SIGCHLD);
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) sigaddset(&c->reaped, forwarded[i]);
    if (c->spec->nested) sigaddset(&c->reaped, SBX_SIGNAL_END_RUN);
    return sigprocmask(SIG_BLOCK, &c->reaped, NULL);
}

__attribute__((noreturn))
static void run_payload(struct child *c);

/* Nested: no PID namespace whose end takes down what the command leaves behind
 * (a double-forked or setsid daemon). The reaper becomes a child subreaper, so every
 * orphan of the run is reparented to it, not to the host's init, and it keeps its
 * children list open to find them at the end (end_leftovers). No /proc, or a kernel
 * without CONFIG_PROC_CHILDREN: the step fails and the run is refused, since a clean
 * end could not be guaranteed. Namespaced: PID 1 already is the reaper. */
static int anchor_signals(struct child *c);

static int become_subreaper(struct child *c) {
    c->children_fd = -1;
    c->signal_anchored = 0;
    if (!c->spec->nested) return 0;
    c->reaper_pid = getpid();
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) return -1;
    c->children_fd = open("/proc/thread-self/children", O_RDONLY | O_CLOEXEC);
    if (c->children_fd < 0) return -1;
    return anchor_signals(c);
}

/* Nested: the reaper takes a Landlock domain of its own that handles nothing but the
 * signal scope. The payload and everything it forks live in domains nested beneath
 * it, and no other process on the host is in it, so kill(-1, SIGKILL) from the
 * reaper reaches exactly the run's processes: Landlock skips every target outside
 * the domain. That is what ends a run whose leftovers keep forking (each parent
 * exiting at once): reading the children list and killing pid by pid loses that
 * race (red team 3, R1), one kill(-1) does not — the kernel walks the process list
 * under the lock fork needs to attach a child, and a process with SIGKILL pending
 * cannot fork. Without the signal scope (ABI < 6, accepted as nested_without =
 * ["scopes"]) there is no anchor: kill(-1) would reach every process of the
 * invoker's uid, so only the pid-by-pid rounds are left (documented). The sweep's
 * skipped targets are not logged as denials (ABI 7: LOG_SAME_EXEC_OFF; the reaper
 * never execs). no_new_privs: landlock_restrict_self needs it without
 * CAP_SYS_ADMIN; the reaper never execs, so it changes nothing else. */
#define SBX_LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#define SBX_LANDLOCK_RESTRICT_SELF_LOG_SAME_EXEC_OFF (1U << 0)
static int anchor_signals(struct child *c) {
    int abi = sbx_fence_landlock_abi();
    if (abi < 6) return 0;
    int fd = sbx_fence_landlock_create_ruleset(0, 0, SBX_LANDLOCK_SCOPE_SIGNAL, abi);
    if (fd < 0) return -1;
    unsigned flags = abi >= 7 ? SBX_LANDLOCK_RESTRICT_SELF_LOG_SAME_EXEC_OFF : 0;
    int r = -1;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0) r = (int)syscall(SYS_landlock_restrict_self, fd, flags);
    int saved = errno;
    close(fd);
    errno = saved;
    if (r < 0) return -1;
    c->signal_anchored = 1;
    return 0;
}

/* The payload's first frame, on its own stack. It works on a copy of the init's
 * state, so nothing a step writes (index, exit_code, the listener) lands in the
 * memory the init reads once the payload has exec'd or exited. */
static int payload_main(void *arg) {
    struct child own = *(const struct child *)arg;
    run_payload(&own);
}

/* The payload is PID 1's child; it runs its own steps and never returns. It is
 * started as posix_spawn starts a program, not forked: a fork of this copy of the
 * supervisor (a large binary, Swift heaps) copied its page tables and then took
 * copy-on-write faults on both sides, for a process that execs a moment later.
 * CLONE_VM shares the init's memory; CLONE_VFORK suspends the init until the
 * payload's execve (its memory is then a new one) or _exit, so the two never run at
 * once on it. The payload never runs on the init's frames (map_payload_stack) and
 * writes only its own copy of the state (payload_main). Its steps are raw syscalls
 * and glibc's thin wrappers, whose only writes to shared memory (errno, the
 * thread's cancellation bits, put back on return) the suspended init does not read;
 * no signal handler can run on that memory: the init reset every disposition to the
 * default (reset_signals), and glibc's two internal handlers act only on a tgkill
 * the process sends itself. What the steps change is per task and so the payload's
 * own: credentials, capabilities, no_new_privs, Landlock, seccomp, PDEATHSIG,
 * rlimits, the descriptor table and dispositions (no CLONE_FILES, CLONE_SIGHAND or
 * CLONE_THREAD), the session. The one per-memory setting, dumpable, is the
 * reaper's: make_reaper_undumpable, make_shared_memory_undumpable. A failure before
 * execve is reported by the payload itself (fail(): the error pipe, then _exit), as
 * from a fork.
 *
 * Suspended, the init answers only SIGKILL until the payload's execve: the
 * supervisor's own kill (and its PDEATHSIG) of a namespaced run, which takes the
 * payload with the PID namespace. Signals it forwards wait until the command runs.
 * Nested, the supervisor ends the run with SBX_SIGNAL_END_RUN, which the reaper
 * must be able to act on while the payload is still setting up (a chdir or an
 * execve held by a hung filesystem); so a nested payload is a copy-on-write fork,
 * as before, on the same stack and steps. */
static int fork_payload(struct child *c) {
    c->payload_pidfd = -1;
    int shared = c->spec->nested ? 0 : CLONE_VM | CLONE_VFORK;
    char *top = (char *)c->payload_stack + c->payload_stack_len;
    /* The payload starts on this CPU, which the init leaves at once (it waits for the
     * payload's execve, or for nothing): a new process is otherwise placed on the
     * idlest CPU, and waking an idle virtual CPU took up to milliseconds
     * (Docs/benchmarks.md, session 37). The payload takes the affinity back as its
     * first step, the init after the fork. Not pinned if either call fails. */
    c->affinity_pinned = sbx_affinity_get(&c->affinity) == 0 && sbx_affinity_pin_here() == 0;
    int pid = clone(payload_main, top, shared | CLONE_PIDFD | SIGCHLD, c, (pid_t *)&c->payload_pidfd);
    int e = errno;
    if (c->affinity_pinned) (void)sbx_affinity_set(&c->affinity);
    /* The init's own mapping is unused from here: the payload runs a new memory
     * after its execve, or none (or, forked, a copy of the mapping). */
    munmap(c->payload_stack, c->payload_stack_len);
    c->payload_stack = NULL;
    if (pid < 0) { errno = e; return -1; }
    c->payload_pid = pid;
    /* Nested: the reaper leaves the supervisor's process group, so a SIGKILL to that
     * group (a CI job's timeout, `kill -9 -PGID`) does not end the reaper before it
     * sweeps — its PDEATHSIG (SBX_SIGNAL_END_RUN) then ends the run as a killed
     * supervisor does (red team 4, F2). After the fork, so the payload stays in the
     * terminal's foreground group where new_session = false. setpgid(0, 0) fails only
     * for a session leader, which this fresh child of the supervisor is not. */
    if (c->spec->nested) (void)setpgid(0, 0);
    return 0;
}

/* The payload cannot inspect or ptrace PID 1. (PID 1 never changes credentials:
 * that would clear PDEATHSIG.) AFTER the fork: a nested payload, a copy, writes its
 * own /proc/self/oom_score_adj, which a not-dumpable memory would leave to root.
 * Namespaced, this runs once the payload has exec'd, and the payload has made the
 * memory it shared not dumpable already (make_shared_memory_undumpable). */
static int make_reaper_undumpable(struct child *c) {
    (void)c;
    return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* Nested: every orphan's exit costs the reaper a wake-up and a scan of its children,
 * and the command chooses how many exit: over a long run that spends any CPU limit
 * the reaper carries (red team 6, G4: an invoker's inherited `prlimit --cpu` ended
 * the reaper and a thousand leftovers outlived the run). So the reaper lifts its own:
 * no limit at all where it may (CAP_SYS_RESOURCE), else — the usual case, the reaper
 * holds no effective capability — soft up to the hard one, with SIGXCPU ignored;
 * only a hard limit its invoker was given can still end it (documented). After the
 * fork: the payload keeps what it inherited (and the policy's, set in its own steps). */
static int lift_reaper_cpu_limit(struct child *c) {
    if (!c->spec->nested) return 0;
    struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
    if (setrlimit(RLIMIT_CPU, &rl) < 0) {
        if (errno != EPERM) return -1;
        if (getrlimit(RLIMIT_CPU, &rl) < 0) return -1;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_CPU, &rl) < 0) return -1;
    }
    struct sigaction ign;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    return sigaction(SIGXCPU, &ign, NULL);
}

/* The reaper keeps only the status pipe, the payload's pidfd and (nested) its
 * children list. */
static int close_reaper_fds(struct child *c) {
    int keep[3] = { c->spec->status_fd, c->payload_pidfd, c->children_fd };
    return close_all_except(keep, 3);
}

/* Nested, once the payload is gone: kill every process of the run still alive. Each
 * is this subreaper's child (orphans were reparented here), so its pid cannot be
 * reused before this process waits on it: pidfd_open pins it, and the kill goes to
 * the pidfd. A process killed while forking leaves children that reparent here and
 * show in the next round; the rounds end when no child is left (ECHILD). */
/* Anchored (anchor_signals): kill(-1) reaches exactly the run's processes. Sweep, then
 * reap until no child is left, the sweep repeated every 64 reaps as a guard, not because
 * it is needed (a process with SIGKILL pending cannot fork). Returns 1 with the
 * payload's wait status in *payload_status if the payload was among those reaped. */
static int sweep_and_reap_all(struct child *c, int *payload_status) {
    int have = 0;
    for (unsigned reaped = 0;; reaped++) {
        if (reaped % 64 == 0) kill(-1, SIGKILL);
        int st;
        pid_t done;
        do { done = waitpid(-1, &st, 0); } while (done < 0 && errno == EINTR);
        if (done < 0) return have;   /* ECHILD: none left */
        if (done == (pid_t)c->payload_pid) { *payload_status = st; have = 1; }
    }
}

/* Namespaced, once the payload is reaped: PID 1 kills what is left of the run and
 * reaps it. Only asked first (WNOWAIT): no child, nothing of the run is alive (a
 * living process of the namespace is a child of this one or has a living ancestor
 * among them). Every orphan is reparented here before its parent can be reaped, so
 * ECHILD after the sweep means none is left. */
static void sweep_namespace(struct child *c) {
    siginfo_t any;
    memset(&any, 0, sizeof any);
    if (waitid(P_ALL, 0, &any, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD) return;
    int status;
    (void)sweep_and_reap_all(c, &status);
}

static void end_leftovers(struct child *c) {
    char buf[4096];
    int status;
    /* Anchored: sweep with kill(-1), then reap until no child is left. No child at
     * all (the usual end): nothing of the run is alive — a living descendant has a
     * living ancestor among the children, or was reparented here — and no sweep is
     * made. Only ASK whether a child is left first (WNOWAIT): reaping zombies before
     * the sweep let fork chains pile them up faster than a reaper with 1/(N+1) of
     * the CPU reaps them, so the sweep never came (red team 4, F1). The payload is
     * reaped already: its status is not among these. */
    if (c->signal_anchored) {
        siginfo_t any;
        memset(&any, 0, sizeof any);
        if (waitid(P_ALL, 0, &any, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD) return;
        (void)sweep_and_reap_all(c, &status);
        return;
    }
    for (;;) {
        while (waitpid(-1, &status, WNOHANG) > 0) {}
        ssize_t n = -1;
        if (lseek(c->children_fd, 0, SEEK_SET) == 0) n = read(c->children_fd, buf, sizeof buf - 1);
        if (n < 0) n = 0;
        /* A full buffer may end mid-number: that one waits for the next round. */
        if ((size_t)n == sizeof buf - 1) while (n > 0 && buf[n - 1] != ' ') n--;
        int killed = 0;
        long pid = 0;
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] >= '0' && buf[i] <= '9') { pid = pid * 10 + (buf[i] - '0'); continue; }
            if (pid > 0) {
                int fd = (int)syscall(SYS_pidfd_open, pid, 0);
                if (fd >= 0) { syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0); close(fd); killed = 1; }
            }
            pid = 0;
        }
        /* Wait for one killed to die, then look again. None killed: either none is
         * left (ECHILD), or one was missed (the list is read while processes come
         * and go): look again shortly rather than wait for a process never killed. */
        pid_t done;
        do { done = waitpid(-1, &status, killed ? 0 : WNOHANG); } while (done < 0 && errno == EINTR);
        if (done < 0 && errno == ECHILD) return;
        if (!killed && done == 0) {
            struct timespec pause = { 0, 1000000 };
            nanosleep(&pause, NULL);
        }
    }
}

/* The run's end to the supervisor (struct sbx_run_status): the payload's wait status
 * and the CPU time of the reaped tree, this process's own included. Written once the
 * rest of the run was reaped, so nothing of it runs on: the figure is complete. */
static void write_status(struct child *c, int wait_status) {
    struct sbx_run_status out;
    memset(&out, 0, sizeof out);
    out.wait_status = wait_status;
    struct rusage children, self;
    if (getrusage(RUSAGE_CHILDREN, &children) == 0 && getrusage(RUSAGE_SELF, &self) == 0) {
        out.cpu_user_us = (uint64_t)(children.ru_utime.tv_sec + self.ru_utime.tv_sec) * 1000000u
            + (uint64_t)(children.ru_utime.tv_usec + self.ru_utime.tv_usec);
        out.cpu_system_us = (uint64_t)(children.ru_stime.tv_sec + self.ru_stime.tv_sec) * 1000000u
            + (uint64_t)(children.ru_stime.tv_usec + self.ru_stime.tv_usec);
    }
    write_all(c->spec->status_fd, (const char *)&out, sizeof out);
}

/* Nested: whether the supervisor's END_RUN is pending, taking it if so. sigwaitinfo
 * hands out the lowest pending signal first, so with SIGCHLD (17) kept pending by a
 * stream of exits END_RUN (64) would wait behind it; this asks for it alone. */
static int take_end_run(struct child *c) {
    if (!c->spec->nested) return 0;
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, SBX_SIGNAL_END_RUN);
    struct timespec zero = { 0, 0 };
    return sigtimedwait(&only, NULL, &zero) == SBX_SIGNAL_END_RUN;
}

/* Nested, END_RUN (the timeout's kill, a cancel, the supervisor's death): the run
 * ends now. Anchored: one sweep (kill(-1), which reaches exactly the run's processes)
 * ends the payload and everything it left at once, then reap until no child is left,
 * keeping the payload's status — no wait for the payload's SIGCHLD, which a stream of
 * other exits could hold off (red team 5, C). Not anchored: kill the payload; its
 * reaping ends the rest in rounds (end_leftovers). */
static void end_run(struct child *c) {
    if (!c->signal_anchored) {
        syscall(SYS_pidfd_send_signal, c->payload_pidfd, SIGKILL, NULL, 0);
        return;
    }
    int status = 0;
    if (sweep_and_reap_all(c, &status)) write_status(c, status);
    _exit(0);
}

__attribute__((noreturn))
static void reap(struct child *c) {
    for (;;) {
        if (take_end_run(c)) end_run(c);
        siginfo_t si;
        int sig = sigwaitinfo(&c->reaped, &si);
        if (sig < 0) continue;
        if (sig == SBX_SIGNAL_END_RUN && c->spec->nested) { end_run(c); continue; }
        if (sig != SIGCHLD) {
            /* Forward what the supervisor sends: a sender in an ancestor pid
             * namespace shows as pid 0 here, so kill(1, sig) from inside is not
             * bounced back. (sigqueue can forge si_pid 0 from inside; that only sends
             * the payload a signal it could send itself.) */
            if (si.si_pid == 0) syscall(SYS_pidfd_send_signal, c->payload_pidfd, sig, NULL, 0);
            /* Nested: no PID namespace tells the supervisor's signals apart, and none
             * is needed (from the payload, a signal to itself). SBX_SIGNAL_END_RUN, the
             * supervisor's kill, is end_run's above. */
            else if (c->spec->nested)
                syscall(SYS_pidfd_send_signal, c->payload_pidfd, sig, NULL, 0);
            continue;
        }
        int status;
        pid_t done;
        unsigned drained = 0;
        while ((done = waitpid(-1, &status, WNOHANG)) > 0) {
            /* A drain the command keeps feeding must not hold END_RUN off. */
            if (++drained % 64 == 0 && done != (pid_t)c->payload_pid && take_end_run(c)) end_run(c);
            if (done == (pid_t)c->payload_pid) {
                /* The run ends with the payload: every other process of it is killed
                 * and reaped before its status is written, so the status says the
                 * run is over and the supervisor need not wait for this process's
                 * own exit (its namespaces let go, about 0.3 ms) to read the run's
                 * statistics and answer. Namespaced, this is PID 1: kill(-1) reaches
                 * exactly the pid namespace (the kernel would kill the same processes
                 * as this one exits); nested, the anchored sweep or the rounds of
                 * the children list. */
                if (c->spec->nested) end_leftovers(c);
                else if (!c->spec->test_status_before_sweep) sweep_namespace(c);
                write_status(c, status);
                if (c->spec->test_status_before_sweep) {
                    /* The tests' control: the rest of the run is left to this exit. */
                    struct timespec late = { 0, 500000000 };
                    nanosleep(&late, NULL);
                }
                _exit(0);
            }
        }
    }
}

/* ---- The payload's steps: identity, fences, exec. ---- */

/* The CPU affinity the init had before it pinned itself for the fork (fork_payload). */
static int restore_payload_affinity(struct child *c) {
    if (!c->affinity_pinned) return 0;
    return sbx_affinity_set(&c->affinity) == 0 ? 0 : -1;
}

static int unblock_signals(struct child *c) {
    close(c->spec->status_fd);
    sigset_t none;
    sigemptyset(&none);
    return sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Nested: the reaper is no PID 1 whose death ends the payload; die with it (a kill
 * from outside, or by the command where the signal scope is missing), and leave at
 * once if it is already gone. Namespaced: nothing to do. */
static int die_with_reaper(struct child *c) {
    if (!c->spec->nested) return 0;
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) return -1;
    if (getppid() != c->reaper_pid) _exit(125);
    return 0;
}

/* A session of its own: no controlling terminal, so TIOCSTI cannot reach the
 * caller's terminal. */
static int new_session(struct child *c) {
    return c->spec->new_session && setsid() < 0 ? -1 : 0;
}

static int cap_last(void) {
    /* PR_CAPBSET_READ fails with EINVAL past the last cap. From the last one this
     * build knows (CAP_CHECKPOINT_RESTORE, 40) up, else down: two calls on a kernel of
     * the same age, not the 24 of a probe down from 63. */
    int c = 40;
    if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) >= 0) {
        while (c < 63 && prctl(PR_CAPBSET_READ, c + 1, 0, 0, 0) >= 0) c++;
        return c;
    }
    for (c = 39; c >= 0; c--) if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) >= 0) return c;
    return 40;
}

/* Dropping needs CAP_SETPCAP, which setuid() may take away. */
static int drop_bounding_set(struct child *c) {
    c->cap_last = c->spec->apply_caps ? cap_last() : -1;
    for (int cap = 0; cap <= c->cap_last; cap++) {
        if (c->spec->cap_keep & (1ULL << cap)) continue;
        /* Not in the set already (a nested run's invoker may have none, and no
         * CAP_SETPCAP to drop them with): nothing to drop. */
        if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 0) continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0 || errno == EINVAL) continue;
        /* Nested, without CAP_SETPCAP (a container's non-root user): the bounding
         * set stays as it is. What it bounds still holds: capset below leaves only
         * `keep` permitted, and with no_new_privs (set before exec) an exec's
         * permitted set is cut to what it had (commoncap: cap_bprm_creds_from_file),
         * root and file capabilities included. */
        if (c->spec->nested && errno == EPERM) continue;
        c->index = cap;
        return -1;
    }
    return 0;
}

/* No root magic: uid 0 or a setuid-root file gains no capabilities on exec.
 * KEEP_CAPS (if anything is kept) lets permitted survive the uid change. */
static int lock_securebits(struct child *c) {
    if (!c->spec->apply_caps) return 0;
    unsigned long bits = SBX_SECBIT_NOROOT | SBX_SECBIT_NOROOT_LOCKED;
    if (c->spec->cap_keep) bits |= SBX_SECBIT_KEEP_CAPS;
    if (prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) == 0) return 0;
    /* Nested, without CAP_SETPCAP: the bits stay as they are; no_new_privs gives what
     * NOROOT is for (an exec of, or as, root gains nothing beyond the permitted set,
     * which capset cuts to `keep`), and no uid changes here, so KEEP_CAPS is moot. */
    return c->spec->nested && errno == EPERM ? 0 : -1;
}

/* Raw syscalls, not glibc's wrappers: those broadcast the change to every thread
 * through locks copied from the supervisor at clone time. We are one thread. */
static int clear_groups(struct child *c) {
    /* Nested: the invoker's own identity, kept as it is (no user namespace maps
     * another; setgroups would need CAP_SETGID). */
    return c->spec->uid_map || c->spec->nested ? 0 : (int)syscall(SYS_setgroups, 0, NULL);
}

static int set_gid(struct child *c) {
    return (int)syscall(SYS_setresgid, c->spec->gid, c->spec->gid, c->spec->gid);
}

static int set_uid(struct child *c) {
    return (int)syscall(SYS_setresuid, c->spec->uid, c->spec->uid, c->spec->uid);
}

static int set_capabilities(struct child *c) {
    const struct sbx_spec *spec = c->spec;
    if (!spec->apply_caps) return 0;
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    for (int i = 0; i < 2; i++) {
        uint32_t v = (uint32_t)(spec->cap_keep >> (32 * i));
        data[i].effective = v; data[i].permitted = v; data[i].inheritable = v;
    }
    if (syscall(SYS_capset, &hdr, data) < 0) return -1;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0) return -1;
    /* Kept capabilities must survive execve for a non-root uid: ambient. */
    for (int cap = 0; cap <= c->cap_last; cap++)
        if ((spec->cap_keep & (1ULL << cap)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0) {
            c->index = cap;
            return -1;
        }
    return 0;
}

/* Namespaced, the payload shares the reaper's memory until its execve (fork_payload)
 * and the reaper runs again only after it, so its own step (make_reaper_undumpable)
 * would leave the command a moment beside a dumpable PID 1: the payload makes that
 * memory not dumpable itself, after the last step that can mark it (a change of uid,
 * gid or a capability gained marks it as fs.suid_dumpable says, commit_creds; with 1,
 * a debugging setting, dumpable). The payload is then not dumpable until its execve,
 * which none of the steps left needs; execve gives the command a new memory whose
 * dumpable state follows its credentials, as after a fork. Nested, the payload's
 * memory is a copy: nothing to do. */
static int make_shared_memory_undumpable(struct child *c) {
    return c->spec->nested ? 0 : prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* A fresh anonymous session keyring: the one inherited from the supervisor is the
 * invoker's, and a process possesses its session keyring whatever its uid — a policy
 * that allows keyctl would let the command read and link the invoker's keys. With a
 * NULL name the kernel checks no permission, so ENOSYS (no CONFIG_KEYS) and EPERM (a
 * seccomp filter or an LSM above us, which the command inherits and cannot lift) mean
 * keyrings are out of the command's reach anyway; any other errno fails the step. */
static int join_session_keyring(struct child *c) {
    (void)c;
    if (syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, NULL) >= 0) return 0;
    return errno == ENOSYS || errno == EPERM ? 0 : -1;
}

static int no_new_privs(struct child *c) {
    (void)c;
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

static int enter_workdir(struct child *c) {
    return chdir(c->spec->workdir);
}

static int apply_landlock(struct child *c) {
    const struct sbx_spec *spec = c->spec;
    if (spec->landlock_fd < 0) return 0;
    for (size_t i = 0; i < spec->n_landlock_inner; i++) {
        c->index = (int)i;
        int fd = open(spec->landlock_inner[i].path, O_PATH | O_CLOEXEC);
        if (fd < 0) return -1;
        struct sbx_landlock_path_beneath pb = { spec->landlock_inner[i].access, fd };
        long r = syscall(SYS_landlock_add_rule, spec->landlock_fd, 1 /* PATH_BENEATH */, &pb, 0);
        int e = errno;
        close(fd);
        errno = e;
        if (r < 0) return -1;
    }
    c->index = -1;
    if (syscall(SYS_landlock_restrict_self, spec->landlock_fd, spec->landlock_restrict_flags) < 0) return -1;
    close(spec->landlock_fd);
    return 0;
}

/* Only the error pipe (CLOEXEC), the notify socket and the checked executable
 * (and script) survive to seccomp. */
static int close_payload_fds(struct child *c) {
    int keep[4] = { c->spec->error_fd, c->spec->notify_sock, c->spec->exec_fd, c->spec->script_fd };
    return close_all_except(keep, 4);
}

/* [binary]: the file the supervisor hashed must be unchanged. The fd already pins
 * the inode (a rename or a swapped path changes nothing); this catches a write into
 * that inode since the hash (every write moves ctime, which no caller can set back).
 * The script's fd loses CLOEXEC: its interpreter opens it as /dev/fd/N. */
static int unchanged(int fd, int64_t sec, int64_t nsec, int64_t size) {
    struct stat st;
    if (fstat(fd, &st) < 0) return -1;
    if ((int64_t)st.st_ctim.tv_sec != sec || (int64_t)st.st_ctim.tv_nsec != nsec || (int64_t)st.st_size != size) {
        errno = ESTALE;
        return -1;
    }
    return 0;
}

static int check_executable(struct child *c) {
    const struct sbx_spec *spec = c->spec;
    if (spec->exec_fd < 0) return 0;
    c->index = 0;
    if (unchanged(spec->exec_fd, spec->exec_ctime_sec, spec->exec_ctime_nsec, spec->exec_size) < 0) return -1;
    /* A write through a shared mapping made before the check moves no ctime; the
     * lease, refused while such a mapping existed and broken by any open for
     * writing since, is what says nobody could write. */
    if (spec->exec_leased && fcntl(spec->exec_fd, F_GETLEASE) != F_RDLCK) { errno = ESTALE; return -1; }
    /* The supervisor's descriptor was opened through the host's mount: exec'd, the
     * command's /proc/self/exe would be that writable host file, past the sandbox's
     * read-only bind (red-team finding). So the same inode is opened again by its
     * sandbox path, through the sandbox's own mount, following no symlink; any
     * other inode there now is refused. The lease stays on exec_fd (it is per
     * inode); O_PATH needs no read permission and opens nothing Landlock checks. */
    c->exec_run_fd = spec->exec_fd;
    if (spec->exec_view) {
        int fd = sys_openat2(AT_FDCWD, spec->exec_view, O_PATH | O_CLOEXEC,
                             SBX_RESOLVE_NO_SYMLINKS | SBX_RESOLVE_NO_MAGICLINKS);
        if (fd < 0) return -1;
        struct stat seen, checked;
        if (fstat(fd, &seen) < 0 || fstat(spec->exec_fd, &checked) < 0) return -1;
        if (seen.st_dev != checked.st_dev || seen.st_ino != checked.st_ino) { errno = ESTALE; return -1; }
        c->exec_run_fd = fd;
    }
    if (spec->script_fd < 0) return 0;
    c->index = 1;
    if (unchanged(spec->script_fd, spec->script_ctime_sec, spec->script_ctime_nsec, spec->script_size) < 0) return -1;
    return fcntl(spec->script_fd, F_SETFD, 0) < 0 ? -1 : 0;
}

static int load_seccomp(struct child *c) {
    const struct sbx_spec *spec = c->spec;
    c->listener = -1;
    if (!spec->seccomp_filter) return 0;
    struct sock_fprog prog = { spec->seccomp_len, (struct sock_filter *)spec->seccomp_filter };
    long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, spec->seccomp_flags, &prog);
    if (r < 0) return -1;
    if (spec->seccomp_flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) c->listener = (int)r;
    /* Installed last, so it is evaluated first and its ENOSYS (unknown numbers)
     * wins over the logged filter's identical answer: not logged. */
    if (spec->seccomp_unlogged) {
        struct sock_fprog pre = { spec->seccomp_unlogged_len, (struct sock_filter *)spec->seccomp_unlogged };
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &pre) < 0) return -1;
    }
    /* Nested: the ioctl fence (default ALLOW, EPERM for the refused commands). The
     * kernel runs every filter and takes the most restrictive answer, so its EPERM
     * holds whatever the filters above say. */
    if (spec->seccomp_fence) {
        struct sock_fprog fence = { spec->seccomp_fence_len, (struct sock_filter *)spec->seccomp_fence };
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fence) < 0) return -1;
    }
    return 0;
}

/* The notify listener goes to the supervisor over the notify socket. */
static int send_listener(struct child *c) {
    if (c->listener >= 0) {
        char byte = 'L';
        struct iovec iov = { &byte, 1 };
        union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
        memset(&u, 0, sizeof u);
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &c->listener, sizeof(int));
        ssize_t n;
        do { n = sendmsg(c->spec->notify_sock, &msg, MSG_NOSIGNAL); } while (n < 0 && errno == EINTR);
        if (n != 1) return -1;
        close(c->listener);
    }
    if (c->spec->notify_sock >= 0) close(c->spec->notify_sock);
    return 0;
}

/* Returns only on failure, with exit code 127 (nothing to run) or 126. */
static int exec_command(struct child *c) {
    const struct sbx_spec *spec = c->spec;
    if (spec->exec_fd >= 0) {
        /* The checked file itself, not whatever its path names now. */
        syscall(SYS_execveat, c->exec_run_fd, "", spec->exec_argv, spec->envp, AT_EMPTY_PATH);
        c->exit_code = 126;
        return -1;
    }
    const char *file = spec->argv[0];
    int has_slash = 0;
    for (const char *p = file; *p; p++) if (*p == '/') { has_slash = 1; break; }
    if (has_slash) {
        execve(file, spec->argv, spec->envp);
        c->exit_code = errno == ENOENT || errno == ENOTDIR ? 127 : 126;
        return -1;
    }
    /* execvp's search, without its allocation: try each PATH entry; remember EACCES. */
    int saw_eacces = 0, last = ENOENT;
    const char *p = spec->search_path ? spec->search_path : "/usr/bin:/bin";
    char path[SBX_PATH_MAX];
    size_t flen = str_len(file);
    for (;;) {
        const char *end = p;
        while (*end && *end != ':') end++;
        size_t dlen = (size_t)(end - p);
        if (dlen == 0) { path[0] = '.'; dlen = 1; } else if (dlen < sizeof path) memcpy(path, p, dlen);
        if (dlen + 1 + flen + 1 <= sizeof path) {
            path[dlen] = '/';
            memcpy(path + dlen + 1, file, flen + 1);
            execve(path, spec->argv, spec->envp);
            if (errno == EACCES) saw_eacces = 1;
            else if (errno != ENOENT && errno != ENOTDIR) { last = errno; break; }
        }
        if (!*end) break;
        p = end + 1;
    }
    errno = saw_eacces ? EACCES : last;
    c->exit_code = errno == ENOENT ? 127 : 126;
    return -1;
}

/* ---- The order of operations: one step per line, the reason for its place beside
 * it. Docs/architecture.md's step table follows these lists line for line. ---- */

static const struct step init_steps[] = {
    /* Dispositions the supervisor set (e.g. SIGPIPE ignored) would survive execve. */
    { SBX_STEP_SIGNALS, reset_signals },
    /* A server's request: its client's stdin, stdout, stderr become 0, 1, 2. BEFORE
     * the close, which then drops the originals with everything else inherited. */
    { SBX_STEP_STDIO, install_stdio },
    /* Drop every inherited descriptor (the run lock, the supervisor's pipe ends) but
     * those in the spec. BEFORE the sync read: our copy of the sync pipe's write end
     * must be gone for EOF to mean "supervisor died". */
    { SBX_STEP_KEEP_LIST, list_kept_fds },
    { SBX_STEP_CLOSE_FDS, close_inherited_fds },
    /* Die with the supervisor; THEN wait for its go: EOF means it died before
     * PDEATHSIG was armed (getppid() is 0 across a pid namespace, so it can't tell).
     * (Egress: this process's own network namespace, from clone3 or made ahead by a
     * server's spawner, was set up by the supervisor before the sync byte; nothing
     * to join.) */
    { SBX_STEP_PDEATHSIG, die_with_supervisor },
    { SBX_STEP_SYNC, wait_for_supervisor },
    /* BEFORE anything is built or forked, so every later process is inside. */
    { SBX_STEP_CGROUP_JOIN, join_cgroups_v1 },
    { SBX_STEP_CGROUP_NAMESPACE, reroot_cgroup_namespace },
    /* BEFORE creating files and mount points, and the later setresuid: they need
     * mapped ids. */
    { SBX_STEP_USERNS_MAP, map_own_ids },
    /* While the capabilities in the new namespaces are still held. */
    { SBX_STEP_HOSTNAME, set_hostname },
    { SBX_STEP_LOOPBACK, bring_up_loopback },
    /* The private root, then pivot: from here on no host path is reachable. Private
     * first: nothing we mount may propagate back to the host. */
    { SBX_STEP_MOUNT_PRIVATE, make_mounts_private },
    { SBX_STEP_ROOT_TMPFS, mount_root_tmpfs },
    { SBX_STEP_MOUNT, apply_mounts },
    { SBX_STEP_MASK_HELPER, remove_mask_helper },
    { SBX_STEP_ROOT_READONLY, make_root_readonly },
    { SBX_STEP_PIVOT_ROOT, pivot_into_root },
    /* Built ahead: the command, AFTER the root (what makes a sandbox built ahead
     * worth having) and BEFORE the rlimits (a small `as` limit could refuse the
     * message's mapping, `nofile` its descriptors) and the payload's stack. */
    { SBX_STEP_COMMAND, receive_command },
    /* BEFORE the rlimits: a small `as` or `data` limit would refuse the mapping. */
    { SBX_STEP_PAYLOAD_STACK, map_payload_stack },
    /* AFTER the root is built, so a small nofile or fsize cannot break building it;
     * BEFORE the fork, so the command inherits them. */
    { SBX_STEP_RLIMIT, set_rlimits },
};

/* PID 1 stays behind as the reaper; the payload is its child. */
static const struct step reaper_steps[] = {
    /* BEFORE the payload exists, which could read /proc/1/cmdline. */
    { SBX_STEP_REAPER_NAME, hide_supervisor_argv },
    { SBX_STEP_REAPER_SIGNALS, block_reaped_signals },
    /* Nested only; BEFORE the fork, so no orphan of the payload's escapes it. */
    { SBX_STEP_SUBREAPER, become_subreaper },
    { SBX_STEP_FORK, fork_payload },
    { SBX_STEP_REAPER_DUMPABLE, make_reaper_undumpable },
    /* Nested only; AFTER the fork, so the payload keeps its limits. */
    { SBX_STEP_REAPER_CPU_LIMIT, lift_reaper_cpu_limit },
    { SBX_STEP_REAPER_CLOSE_FDS, close_reaper_fds },
};

static const struct step payload_steps[] = {
    /* FIRST: the command's steps and the command run where the scheduler puts them. */
    { SBX_STEP_PAYLOAD_AFFINITY, restore_payload_affinity },
    { SBX_STEP_PAYLOAD_SIGNALS, unblock_signals },
    { SBX_STEP_PAYLOAD_PDEATHSIG, die_with_reaper },
    { SBX_STEP_SETSID, new_session },
    /* Nested only: the reaper keeps neither (see each). BEFORE the capabilities go. */
    { SBX_STEP_PAYLOAD_RLIMIT, set_payload_rlimits },
    { SBX_STEP_PAYLOAD_OOM_SCORE, prefer_payload_for_oom },
    /* Identity and capabilities: the bounding set BEFORE setuid (needs CAP_SETPCAP);
     * securebits BEFORE the uid change, so kept capabilities survive it; gid BEFORE
     * uid (after a non-root uid the gid cannot change); capset AFTER the uid change,
     * which clears capabilities. */
    { SBX_STEP_CAPS_BOUNDING, drop_bounding_set },
    { SBX_STEP_SECUREBITS, lock_securebits },
    { SBX_STEP_SETGROUPS, clear_groups },
    { SBX_STEP_SETGID, set_gid },
    { SBX_STEP_SETUID, set_uid },
    { SBX_STEP_CAPS, set_capabilities },
    /* Namespaced: the memory it shares with the reaper, BEFORE execve (the reaper's
     * own step runs only after it) and AFTER the uid change and capset, which can
     * mark that memory dumpable. */
    { SBX_STEP_SHARED_UNDUMPABLE, make_shared_memory_undumpable },
    /* AFTER the uid change, so the command's uid owns the new keyring; BEFORE the
     * fences (seccomp may deny keyctl). */
    { SBX_STEP_KEYRING, join_session_keyring },
    /* AFTER the uid change (setuid from root would clear it anyway) and BEFORE
     * Landlock and seccomp, which require it for an unprivileged caller. */
    { SBX_STEP_NO_NEW_PRIVS, no_new_privs },
    { SBX_STEP_CHDIR, enter_workdir },
    /* AFTER pivot_root, so the paths that exist only inside exist. */
    { SBX_STEP_LANDLOCK, apply_landlock },
    /* BEFORE seccomp, so the filter need not allow close_range. */
    { SBX_STEP_PAYLOAD_CLOSE_FDS, close_payload_fds },
    /* [binary]: the checked file unchanged since its hash; BEFORE seccomp, so the
     * filter need not allow fstat or fcntl. */
    { SBX_STEP_EXEC_CHECK, check_executable },
    /* seccomp last, so the filter need not allow anything the set-up above used. */
    { SBX_STEP_SECCOMP, load_seccomp },
    { SBX_STEP_NOTIFY_SEND, send_listener },
    { SBX_STEP_EXEC, exec_command },
};

/* Nested isolation (namespaces cannot be made here): no root is built. The init's
 * steps that need no namespace, then the reaper's and the payload's, from the same
 * functions: the reaper stays behind as a child subreaper that ends what the
 * command leaves behind (no PID namespace does it). */
static const struct step nested_init_steps[] = {
    { SBX_STEP_SIGNALS, reset_signals },
    { SBX_STEP_STDIO, install_stdio },
    { SBX_STEP_KEEP_LIST, list_kept_fds },
    { SBX_STEP_CLOSE_FDS, close_inherited_fds },
    { SBX_STEP_PDEATHSIG, die_with_supervisor },
    { SBX_STEP_SYNC, wait_for_supervisor },
    { SBX_STEP_CGROUP_JOIN, join_cgroups_v1 },
    /* No rlimits and no oom_score_adj here: they are the payload's (its list). The
     * payload's stack, though (fork_payload). */
    { SBX_STEP_PAYLOAD_STACK, map_payload_stack },
};

#define N_STEPS(list) (sizeof list / sizeof list[0])

static void run_list(struct child *c, const struct step *steps, size_t n) {
    for (size_t i = 0; i < n; i++) {
        c->index = -1;
        if (steps[i].run(c) < 0) fail(c->spec, steps[i].code, c->index, errno, c->exit_code);
    }
}

/* The payload's list ends in execve, which returns only by failing. */
static void run_payload(struct child *c) {
    run_list(c, payload_steps, N_STEPS(payload_steps));
    _exit(125);
}

__attribute__((noreturn))
static void sbx_init(const struct sbx_spec *spec) {
    struct child c;
    memset(&c, 0, sizeof c);
    c.spec = spec;
    c.exit_code = 125;
    c.listener = -1;
    c.payload_pidfd = -1;
    c.b.rootfd = -1;
    c.b.mask_mnt = -1;
    c.children_fd = -1;
    if (spec->nested) run_list(&c, nested_init_steps, N_STEPS(nested_init_steps));
    else run_list(&c, init_steps, N_STEPS(init_steps));
    run_list(&c, reaper_steps, N_STEPS(reaper_steps));
    reap(&c);
}

size_t sbx_child_steps(int32_t *out, size_t cap) {
    const struct { const struct step *steps; size_t n; } lists[] = {
        { init_steps, N_STEPS(init_steps) }, { reaper_steps, N_STEPS(reaper_steps) }, { payload_steps, N_STEPS(payload_steps) },
    };
    size_t k = 0;
    for (size_t l = 0; l < sizeof lists / sizeof lists[0]; l++)
        for (size_t i = 0; i < lists[l].n; i++, k++)
            if (k < cap) out[k] = lists[l].steps[i].code;
    return k;
}

/* Only the calling thread's credentials change (raw syscalls): euid `owner` for the
 * clone, with the effective capabilities the euid change cleared raised again from
 * the permitted set, so the clone itself (CLONE_INTO_CGROUP, the namespaces) is as
 * privileged as before; only the new user namespace's owner differs. */
static int become_owner(uint32_t owner) {
    /* The gid of the same number too: files the init creates (its new root) need an
     * fsuid and fsgid that its user namespace maps. */
    if (syscall(SYS_setresgid, -1, owner, -1) < 0) return -errno;
    if (syscall(SYS_setresuid, -1, owner, -1) < 0) { int e = errno; syscall(SYS_setresgid, -1, 0, -1); return -e; }
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &hdr, data) < 0) goto undo;
    data[0].effective = data[0].permitted;
    data[1].effective = data[1].permitted;
    if (syscall(SYS_capset, &hdr, data) < 0) goto undo;
    return 0;
undo:;
    int e = errno;
    syscall(SYS_setresuid, -1, 0, -1);
    syscall(SYS_setresgid, -1, 0, -1);
    return -e;
}

pid_t sbx_spawn(const struct sbx_spec *spec, int *pidfd_out) {
    pid_t pid;
    /* A server's spawner (spawner.c) clones the init from its own small image. */
    if (sbx_spawner_spawn(spec, pidfd_out, &pid)) return pid;
    /* A sandbox built ahead outlives the thread that builds it, and an init cloned
     * here dies with its cloning thread (PDEATHSIG): only the spawner, whose
     * thread is the server's for good, may clone one. */
    if (spec->command_fd >= 0) return -EXDEV;
    return sbx_spawn_here(spec, 0, pidfd_out);
}

/* Back to the host's network namespace after a clone in one made ahead: this
 * thread goes on there; if it cannot, nothing it does after (sockets, the next
 * clone) could be trusted to be where it should, so the process ends. */
static void leave_netns(int host_netns) {
    if (host_netns < 0) return;
    if (setns(host_netns, CLONE_NEWNET) < 0) abort();
    close(host_netns);
}

pid_t sbx_spawn_here(const struct sbx_spec *spec, uint64_t extra_flags, int *pidfd_out) {
    int pidfd = -1;
    uint64_t flags = (spec->nested ? 0 : spec->clone_flags) | extra_flags;
    /* A network namespace made ahead: the init is cloned in it, and only in it
     * (entered while this thread is still euid 0; a failure fails the spawn). */
    int host_netns = -1;
    if (spec->join_netns_fd >= 0 && (flags & CLONE_NEWNET)) {
        host_netns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (host_netns < 0) return -errno;
        if (setns(spec->join_netns_fd, CLONE_NEWNET) < 0) { int e = errno; close(host_netns); return -e; }
        flags &= ~(uint64_t)CLONE_NEWNET;
    }
    /* A euid change marks the whole process not dumpable (suid_dumpable); the
     * supervisor's own setting is put back afterwards. */
    int hardened = sbx_harden_root();
    if (hardened < 0) { leave_netns(host_netns); return hardened; }
    /* A hardened (root) process is put back to not dumpable whatever it was, and no
     * idmap helper lives meanwhile (with fs.suid_dumpable = 1 the euid change makes
     * the process dumpable until then). */
    if (spec->has_userns_owner) sbx_dumpable_lock();
    int dumpable = spec->has_userns_owner ? (sbx_is_hardened() ? 0 : prctl(PR_GET_DUMPABLE, 0, 0, 0, 0)) : -1;
    if (spec->has_userns_owner) {
        int r = become_owner(spec->userns_owner);
        if (r < 0) {
            if (dumpable >= 0) prctl(PR_SET_DUMPABLE, dumpable, 0, 0, 0);
            sbx_dumpable_unlock();
            leave_netns(host_netns);
            return r;
        }
    }
    long pid = clone_with_pidfd(flags, spec->cgroup_fd, &pidfd);
    if (pid == 0) sbx_init(spec);
    /* Back to euid 0 (the kernel restores the effective set from the permitted one)
     * and egid 0. */
    if (spec->has_userns_owner) {
        syscall(SYS_setresuid, -1, 0, -1);
        syscall(SYS_setresgid, -1, 0, -1);
        if (dumpable >= 0) prctl(PR_SET_DUMPABLE, dumpable, 0, 0, 0);
        sbx_dumpable_unlock();
    }
    leave_netns(host_netns);
    if (pid < 0) return (pid_t)pid;
    *pidfd_out = pidfd;
    return (pid_t)pid;
}
