/* See sandbox_spawner.h. The server's side (flatten, send, receive the pidfd) and
 * the spawner's loop (receive, read back, clone with CLONE_PARENT, reply). */
#define _GNU_SOURCE
#include "sandbox_spawner.h"
#include "sandbox_child.h"
#include "sandbox_supervisor.h"
#include "kernel_abi.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/time.h>
#include <time.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define SPAWNER_MAGIC 0x53425853u      /* "SXBS" */
#define SPAWNER_MAX_BODY (8u << 20)
#define SPAWNER_MAX_FDS 253            /* SCM_MAX_FD: what one message carries */
#define SPAWNER_TIMEOUT_S 10

struct wire_header {
    uint32_t magic;
    uint32_t nfds;                     /* on this message; [0] is the working directory */
    uint64_t len;                      /* body bytes that follow */
    uint8_t cloexec[(SPAWNER_MAX_FDS + 7) / 8];
};

static struct {
    pthread_mutex_t lock;              /* one request on the socket at a time */
    int sock;                          /* -1: no spawner; clone here */
    int pidfd;
} spawner = { PTHREAD_MUTEX_INITIALIZER, -1, -1 };

/* ---- Flattening (the server's side; ordinary code, it may allocate). ---- */

struct writer {
    unsigned char *buf;
    size_t len, cap;
    int fds[SPAWNER_MAX_FDS];
    size_t nfd;
    int err;                           /* E2BIG, EMFILE, ENOMEM: the spec does not fit */
};

/* Appends n bytes at the next 8-byte boundary; their offset (> 0 after the spec). */
static uintptr_t put(struct writer *w, const void *p, size_t n) {
    size_t off = (w->len + 7) & ~(size_t)7;
    if (w->err) return 0;
    if (off > SPAWNER_MAX_BODY || n > SPAWNER_MAX_BODY - off) { w->err = E2BIG; return 0; }
    if (off + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < off + n) cap *= 2;
        unsigned char *b = realloc(w->buf, cap);
        if (!b) { w->err = ENOMEM; return 0; }
        w->buf = b; w->cap = cap;
    }
    memset(w->buf + w->len, 0, off - w->len);
    if (n) memcpy(w->buf + off, p, n);
    w->len = off + n;
    return off;
}

static const void *at(uintptr_t off) { return (const void *)off; }

static const char *put_string(struct writer *w, const char *s) {
    return s ? at(put(w, s, strlen(s) + 1)) : NULL;
}

static char *const *put_strings(struct writer *w, char *const *v) {
    if (!v) return NULL;
    size_t n = 0;
    while (v[n]) n++;
    uintptr_t *offs = malloc((n + 1) * sizeof *offs);
    if (!offs) { w->err = ENOMEM; return NULL; }
    for (size_t i = 0; i < n; i++) offs[i] = (uintptr_t)put_string(w, v[i]);
    offs[n] = 0;
    uintptr_t off = put(w, offs, (n + 1) * sizeof *offs);
    free(offs);
    return (char *const *)at(off);
}

/* A descriptor travels as its index on the message; -1 stays -1. */
static int put_fd(struct writer *w, int fd) {
    if (fd < 0) return -1;
    if (w->nfd == SPAWNER_MAX_FDS) { w->err = EMFILE; return -1; }
    w->fds[w->nfd] = fd;
    return (int)w->nfd++;
}

static int flatten(const struct sbx_spec *spec, int cwd, struct writer *w) {
    struct sbx_spec s = *spec;
    put(w, spec, sizeof *spec);        /* offset 0; rewritten below */
    put_fd(w, cwd);                    /* index 0 */

    s.cgroup_fd = put_fd(w, spec->cgroup_fd);
    if (spec->n_cgroup_join_fds) {
        int *fds = malloc(spec->n_cgroup_join_fds * sizeof *fds);
        if (!fds) return -ENOMEM;
        for (size_t i = 0; i < spec->n_cgroup_join_fds; i++) fds[i] = put_fd(w, spec->cgroup_join_fds[i]);
        s.cgroup_join_fds = at(put(w, fds, spec->n_cgroup_join_fds * sizeof *fds));
        free(fds);
    } else s.cgroup_join_fds = NULL;
    s.uid_map = put_string(w, spec->uid_map);
    s.gid_map = put_string(w, spec->gid_map);
    s.staging = put_string(w, spec->staging);
    if (spec->n_mounts) {
        struct sbx_mount_op *ops = malloc(spec->n_mounts * sizeof *ops);
        if (!ops) return -ENOMEM;
        for (size_t i = 0; i < spec->n_mounts; i++) {
            ops[i] = spec->mounts[i];
            ops[i].source = put_string(w, spec->mounts[i].source);
            ops[i].dest = put_string(w, spec->mounts[i].dest);
            ops[i].data = put_string(w, spec->mounts[i].data);
            ops[i].fd = put_fd(w, spec->mounts[i].fd);
        }
        s.mounts = at(put(w, ops, spec->n_mounts * sizeof *ops));
        free(ops);
    } else s.mounts = NULL;
    s.hostname = put_string(w, spec->hostname);
    s.rlimits = spec->n_rlimits ? at(put(w, spec->rlimits, spec->n_rlimits * sizeof *spec->rlimits)) : NULL;
    s.workdir = put_string(w, spec->workdir);
    s.argv = put_strings(w, spec->argv);
    s.envp = put_strings(w, spec->envp);
    s.search_path = put_string(w, spec->search_path);
    s.exec_fd = put_fd(w, spec->exec_fd);
    s.exec_argv = put_strings(w, spec->exec_argv);
    s.exec_view = put_string(w, spec->exec_view);
    s.script_fd = put_fd(w, spec->script_fd);
    s.landlock_fd = put_fd(w, spec->landlock_fd);
    if (spec->n_landlock_inner) {
        struct sbx_landlock_inner *in = malloc(spec->n_landlock_inner * sizeof *in);
        if (!in) return -ENOMEM;
        for (size_t i = 0; i < spec->n_landlock_inner; i++) {
            in[i] = spec->landlock_inner[i];
            in[i].path = put_string(w, spec->landlock_inner[i].path);
        }
        s.landlock_inner = at(put(w, in, spec->n_landlock_inner * sizeof *in));
        free(in);
    } else s.landlock_inner = NULL;
    /* struct sock_filter: 8 bytes an instruction. */
    s.seccomp_filter = spec->seccomp_filter ? at(put(w, spec->seccomp_filter, (size_t)spec->seccomp_len * 8)) : NULL;
    s.seccomp_unlogged = spec->seccomp_unlogged ? at(put(w, spec->seccomp_unlogged, (size_t)spec->seccomp_unlogged_len * 8)) : NULL;
    s.seccomp_fence = spec->seccomp_fence ? at(put(w, spec->seccomp_fence, (size_t)spec->seccomp_fence_len * 8)) : NULL;
    s.notify_sock = put_fd(w, spec->notify_sock);
    s.sync_fd = put_fd(w, spec->sync_fd);
    s.error_fd = put_fd(w, spec->error_fd);
    s.status_fd = put_fd(w, spec->status_fd);
    for (int i = 0; i < 3; i++) s.stdio_fds[i] = put_fd(w, spec->stdio_fds[i]);
    s.netns_fd = put_fd(w, spec->netns_fd);
    s.command_fd = put_fd(w, spec->command_fd);
    /* argv_area stays a pointer: the spawner is a copy of this process, its argv
     * strings at the same address (the reaper overwrites its own copy). */
    if (w->err) return -w->err;
    memcpy(w->buf, &s, sizeof s);
    return 0;
}

/* ---- Reading back (the spawner's side: no allocation; checks every offset). ---- */

struct reader {
    unsigned char *base;
    size_t len;
    const int *fds;
    size_t nfd;
    int bad;
};

static const void *get(struct reader *r, const void *p, size_t n) {
    uintptr_t off = (uintptr_t)p;
    if (!off) return NULL;
    if (off < sizeof(struct sbx_spec) || off > r->len || n > r->len - off || off % 4) { r->bad = 1; return NULL; }
    return r->base + off;
}

/* An array of `count` elements of `size` bytes (the count is checked before the
 * multiplication can wrap). */
static const void *get_array(struct reader *r, const void *p, size_t count, size_t size) {
    if (p && count > r->len / size) { r->bad = 1; return NULL; }
    return get(r, p, count * size);
}

static const char *get_string(struct reader *r, const char *p) {
    uintptr_t off = (uintptr_t)p;
    if (!off) return NULL;
    if (off < sizeof(struct sbx_spec) || off >= r->len || !memchr(r->base + off, 0, r->len - off)) { r->bad = 1; return NULL; }
    return (const char *)(r->base + off);
}

static char *const *get_strings(struct reader *r, char *const *p) {
    if (!p) return NULL;
    uintptr_t off = (uintptr_t)p;
    if (off < sizeof(struct sbx_spec) || off > r->len || off % 8) { r->bad = 1; return NULL; }
    uintptr_t *v = (uintptr_t *)(r->base + off);
    size_t max = (r->len - off) / sizeof *v;
    size_t i = 0;
    for (; i < max && v[i]; i++) v[i] = (uintptr_t)get_string(r, (const char *)v[i]);
    if (i == max) { r->bad = 1; return NULL; }
    return (char *const *)v;
}

static int get_fd(struct reader *r, int index) {
    if (index < 0) return -1;
    if ((size_t)index >= r->nfd) { r->bad = 1; return -1; }
    return r->fds[index];
}

/* The spec in r->base made whole again in place: offsets to pointers, indexes to
 * the descriptors received. 0, or -EPROTO. */
static int read_back(struct reader *r) {
    if (r->len < sizeof(struct sbx_spec)) return -EPROTO;
    struct sbx_spec *s = (struct sbx_spec *)r->base;
    s->cgroup_fd = get_fd(r, s->cgroup_fd);
    int *join = (int *)(uintptr_t)get_array(r, s->cgroup_join_fds, s->n_cgroup_join_fds, sizeof(int));
    for (size_t i = 0; join && i < s->n_cgroup_join_fds; i++) join[i] = get_fd(r, join[i]);
    s->cgroup_join_fds = join;
    if (!join) s->n_cgroup_join_fds = 0;
    s->uid_map = get_string(r, s->uid_map);
    s->gid_map = get_string(r, s->gid_map);
    s->staging = get_string(r, s->staging);
    struct sbx_mount_op *ops = (struct sbx_mount_op *)(uintptr_t)get_array(r, s->mounts, s->n_mounts, sizeof *ops);
    for (size_t i = 0; ops && i < s->n_mounts; i++) {
        ops[i].source = get_string(r, ops[i].source);
        ops[i].dest = get_string(r, ops[i].dest);
        ops[i].data = get_string(r, ops[i].data);
        ops[i].fd = get_fd(r, ops[i].fd);
    }
    s->mounts = ops;
    if (!ops) s->n_mounts = 0;
    s->hostname = get_string(r, s->hostname);
    s->rlimits = get_array(r, s->rlimits, s->n_rlimits, sizeof *s->rlimits);
    if (!s->rlimits) s->n_rlimits = 0;
    s->workdir = get_string(r, s->workdir);
    s->argv = get_strings(r, s->argv);
    s->envp = get_strings(r, s->envp);
    s->search_path = get_string(r, s->search_path);
    s->exec_fd = get_fd(r, s->exec_fd);
    s->exec_argv = get_strings(r, s->exec_argv);
    s->exec_view = get_string(r, s->exec_view);
    s->script_fd = get_fd(r, s->script_fd);
    s->landlock_fd = get_fd(r, s->landlock_fd);
    struct sbx_landlock_inner *in = (struct sbx_landlock_inner *)(uintptr_t)get_array(r, s->landlock_inner, s->n_landlock_inner, sizeof *in);
    for (size_t i = 0; in && i < s->n_landlock_inner; i++) in[i].path = get_string(r, in[i].path);
    s->landlock_inner = in;
    if (!in) s->n_landlock_inner = 0;
    s->seccomp_filter = get_array(r, s->seccomp_filter, s->seccomp_len, 8);
    s->seccomp_unlogged = get_array(r, s->seccomp_unlogged, s->seccomp_unlogged_len, 8);
    s->seccomp_fence = get_array(r, s->seccomp_fence, s->seccomp_fence_len, 8);
    s->notify_sock = get_fd(r, s->notify_sock);
    s->sync_fd = get_fd(r, s->sync_fd);
    s->error_fd = get_fd(r, s->error_fd);
    s->status_fd = get_fd(r, s->status_fd);
    for (int i = 0; i < 3; i++) s->stdio_fds[i] = get_fd(r, s->stdio_fds[i]);
    s->netns_fd = get_fd(r, s->netns_fd);
    s->join_netns_fd = -1;   /* the caller's descriptor, not sent: the spawner makes its own */
    s->command_fd = get_fd(r, s->command_fd);
    return r->bad ? -EPROTO : 0;
}

/* ---- The wire. ---- */

static int send_all(int sock, const unsigned char *p, size_t n) {
    while (n) {
        ssize_t k = send(sock, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return k < 0 ? -errno : -EPIPE;
        p += k; n -= (size_t)k;
    }
    return 0;
}

static int recv_all(int sock, unsigned char *p, size_t n) {
    while (n) {
        ssize_t k = recv(sock, p, n, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return k < 0 ? -errno : -EPIPE;
        p += k; n -= (size_t)k;
    }
    return 0;
}

/* One message carrying `n` bytes of `data` and `nfds` descriptors. */
static int send_with_fds(int sock, const void *data, size_t n, const int *fds, size_t nfds) {
    union { char buf[CMSG_SPACE(SPAWNER_MAX_FDS * sizeof(int))]; struct cmsghdr align; } u;
    struct iovec iov = { (void *)data, n };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (nfds) {
        memset(&u, 0, sizeof u);
        msg.msg_control = u.buf;
        msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
    }
    ssize_t k;
    do { k = sendmsg(sock, &msg, MSG_NOSIGNAL); } while (k < 0 && errno == EINTR);
    if (k < 0) return -errno;
    return send_all(sock, (const unsigned char *)data + k, n - (size_t)k);
}

/* Receives `n` bytes; the descriptors that came with the first part into fds (at
 * most `max`, *nfds of them, close-on-exec). -EPIPE at EOF. */
static int recv_with_fds(int sock, void *data, size_t n, int *fds, size_t max, size_t *nfds) {
    union { char buf[CMSG_SPACE(SPAWNER_MAX_FDS * sizeof(int))]; struct cmsghdr align; } u;
    struct iovec iov = { data, n };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = CMSG_SPACE(max * sizeof(int)) };
    *nfds = 0;
    ssize_t k;
    do { k = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); } while (k < 0 && errno == EINTR);
    if (k <= 0) return k < 0 ? -errno : -EPIPE;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t got = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < got; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (*nfds < max) fds[(*nfds)++] = fd; else close(fd);
        }
    }
    if (msg.msg_flags & MSG_CTRUNC) {
        for (size_t i = 0; i < *nfds; i++) close(fds[i]);
        *nfds = 0;
        return -EMFILE;
    }
    return recv_all(sock, (unsigned char *)data + k, n - (size_t)k);
}

/* ---- The spawner process. ---- */

#define SBX_STATX_MNT_ID_UNIQUE 0x00004000U   /* Linux 6.8 */
#define SBX_SYS_statmount 457                 /* x86_64 and arm64 alike */
#define SBX_STATMOUNT_SB_BASIC 0x00000001U

/* Filesystems whose files have no flush to wait in (a block or memory filesystem of
 * the kernel's own): by superblock magic. FUSE, NFS, SMB, 9p, Ceph, overlayfs (whose
 * flush is its lower file's) and anything unknown are not here. */
static int flushes_never(uint64_t magic) {
    static const uint64_t local[] = {
        0xEF53,        /* ext2, ext3, ext4 */
        0x58465342,    /* xfs */
        0x9123683E,    /* btrfs */
        0x01021994,    /* tmpfs, devtmpfs */
        0x858458f6,    /* ramfs */
        0x73717368,    /* squashfs */
        0xE0F5E1E2,    /* erofs */
        0x9fa0,        /* proc */
        0x62656572,    /* sysfs */
        0x27e0eb,      /* cgroup */
        0x63677270,    /* cgroup2 */
    };
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++) if (local[i] == magic) return 1;
    return 0;
}

/* Whether the mount with this unique id (never reused: STATX_MNT_ID_UNIQUE) is of
 * such a filesystem, asked once (statmount) and remembered. 0 when it cannot be
 * told (an older kernel): the file is then closed aside. */
static int mount_flushes_never(uint64_t unique_id) {
    static struct { uint64_t id; int never; } seen[64];
    static unsigned next;
    for (size_t i = 0; i < 64; i++) if (seen[i].id == unique_id) return seen[i].never;
    struct { uint32_t size, spare; uint64_t mnt_id, param; } req = { 24, 0, unique_id, SBX_STATMOUNT_SB_BASIC };
    _Alignas(8) unsigned char buf[4096];
    if (syscall(SBX_SYS_statmount, &req, buf, sizeof buf, 0) < 0) return 0;
    uint64_t mask, magic;
    memcpy(&mask, buf + 8, sizeof mask);       /* struct statmount: size, mnt_opts, mask, */
    memcpy(&magic, buf + 24, sizeof magic);    /* sb_dev_major, sb_dev_minor, sb_magic */
    int never = (mask & SBX_STATMOUNT_SB_BASIC) && flushes_never(magic);
    seen[next % 64].id = unique_id;
    seen[next % 64].never = never;
    next++;
    return never;
}

/* Whether closing `fd` returns at once: an O_PATH descriptor, a pipe, a unix
 * socket, an anonymous inode, a memory device (/dev/null…), a file or directory of
 * a local filesystem (mount_flushes_never: the checked binary, usually). Anything else may wait
 * in its file's flush (a FUSE daemon that never answers, an NFS server, a TCP
 * socket with SO_LINGER, a tty draining), and a client chooses its stdio and its
 * command's file. Asked without calling into the file's filesystem
 * (AT_STATX_DONT_SYNC: no FUSE round trip). */
static int closes_at_once(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_PATH)) return 1;
    /* A namespace (the network namespace a server prepared for the run): its last
     * reference is let go by the kernel in a worker of its own. */
    struct statfs sf;
    if (fstatfs(fd, &sf) == 0 && sf.f_type == SBX_NSFS_MAGIC) return 1;
    struct statx st;
    if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE | SBX_STATX_MNT_ID_UNIQUE, &st) < 0) return 0;
    unsigned type = st.stx_mode & S_IFMT;
    if (type == S_IFIFO || type == 0) return 1;
    if ((type == S_IFREG || type == S_IFDIR) && (st.stx_mask & SBX_STATX_MNT_ID_UNIQUE))
        return mount_flushes_never(st.stx_mnt_id);
    if (type == S_IFCHR) return st.stx_rdev_major == 1;
    if (type == S_IFSOCK) {
        int domain = -1;
        socklen_t len = sizeof domain;
        return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_UNIX;
    }
    return 0;
}

/* The request's descriptors, after the reply: those that close at once here; each
 * other one by a child of its own sharing this descriptor table (CLONE_FILES),
 * whose close takes it out of the table at once and may then wait in the flush,
 * holding only that child, never the next request. The spawner waits until the
 * slot is free (at most a second): a later init, a copy of this table, would
 * otherwise inherit the file and wait in the same flush when it closes what it
 * inherited. */
static void release_request(const int *fds, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (closes_at_once(fds[i])) { close(fds[i]); continue; }
        long pid = syscall(SYS_clone, (unsigned long)(CLONE_FILES | SIGCHLD), 0UL, 0UL, 0UL, 0UL);
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);   /* a stuck close ends with the spawner */
            close(fds[i]);
            _exit(0);
        }
        if (pid < 0) { close(fds[i]); continue; }      /* no child: here, as before */
        struct timespec step = { 0, 20000 };
        for (int waited = 0; fcntl(fds[i], F_GETFD) >= 0 && waited < 50000; waited++) nanosleep(&step, NULL);
    }
}

/* Closers that have finished (the spawner's only children: inits are the server's). */
static void reap_closers(void) {
    while (waitpid(-1, NULL, WNOHANG) > 0) {}
}

/* Whether the init resolves a bind beneath its working directory (rootless:
 * child.c, do_bind): only then does the spawner enter the caller's directory, which
 * on a FUSE mount could wait on its daemon. */
static int needs_cwd(const struct sbx_spec *s) {
    for (size_t i = 0; i < s->n_mounts; i++)
        if (s->mounts[i].kind == SBX_MOUNT_BIND && (s->mounts[i].flags & SBX_MF_BENEATH_CWD) && !(s->mounts[i].flags & SBX_MF_SKIP))
            return 1;
    return 0;
}

/* A network namespace made while no request waits, for the next run that may take
 * one (premade_netns_ok): its creation (loopback, sysctl tables: most of what a
 * clone with CLONE_NEWNET costs) is then off that run's path. Each is taken once;
 * nothing of one run's network reaches another. The spawner itself stays in the
 * host's namespace (`host_netns`), which a run without a new one inherits. */
static int host_netns = -1, premade_netns = -1;

static void make_netns_ahead(void) {
    if (premade_netns >= 0 || host_netns < 0) return;
    if (unshare(CLONE_NEWNET) < 0) return;   /* none ahead: runs make their own */
    premade_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    /* Runs that must not take it would be cloned in it: end the spawner (the
     * server then clones itself) rather than stay. */
    if (setns(host_netns, CLONE_NEWNET) < 0) _exit(0);
}

/* Enter the namespace made ahead for `s`, with `lo` up when the run asks for it
 * (its init could not: the namespace's owner is not its user namespace); the spec
 * then asks for neither. 1: ours entered, 2: the server's (leave_premade_netns
 * after the clone); 0: the run makes its own as before. */
static int enter_premade_netns(struct sbx_spec *s) {
    if (!s->premade_netns_ok || s->nested || !(s->clone_flags & CLONE_NEWNET)) return 0;
    /* One the server prepared for this run (netns_fd) is taken instead of ours,
     * which stays for the next run. Not entered: as if none was given (the
     * supervisor sees which namespace the init is in before it relies on it). */
    int which = s->netns_fd >= 0 ? 2 : 1;
    int ns = which == 2 ? s->netns_fd : premade_netns;
    if (ns < 0 || setns(ns, CLONE_NEWNET) < 0) return 0;
    if (s->loopback_up && sbx_loopback_up() < 0) {
        if (setns(host_netns, CLONE_NEWNET) < 0) _exit(0);
        return 0;
    }
    s->clone_flags &= ~(uint64_t)CLONE_NEWNET;
    s->loopback_up = 0;
    return which;
}

static void leave_premade_netns(int which) {
    if (setns(host_netns, CLONE_NEWNET) < 0) _exit(0);
    if (which != 1) return;   /* the server's (2) is closed with the request's descriptors */
    close(premade_netns);
    premade_netns = -1;
}

/* One request: the header and its descriptors, the body, the clone; the reply is
 * {pid or -errno} with the pidfd. Returns -1 when the server has gone (EOF). */
static int serve_one(int sock, unsigned char *body) {
    struct wire_header h;
    int fds[SPAWNER_MAX_FDS];
    size_t nfd = 0;
    int r = recv_with_fds(sock, &h, sizeof h, fds, SPAWNER_MAX_FDS, &nfd);
    /* A stream out of step cannot be read further: the server sees EOF and its
     * spawns fail rather than guess. What came with it is let go as after a
     * request (release_request: no close here that could wait). */
    if (r < 0 && r != -EMFILE) { release_request(fds, nfd); return -1; }
    if (h.magic != SPAWNER_MAGIC || h.len > SPAWNER_MAX_BODY) { release_request(fds, nfd); return -1; }
    if (recv_all(sock, body, h.len) < 0) { release_request(fds, nfd); return -1; }

    int64_t result = r;
    int pidfd = -1;
    if (result == 0 && (nfd != h.nfds || nfd == 0)) result = -EPROTO;
    for (size_t i = 0; result == 0 && i < nfd; i++)
        if (!(h.cloexec[i / 8] & (1u << (i % 8))) && fcntl(fds[i], F_SETFD, 0) < 0) result = -errno;
    struct reader rd = { body, h.len, fds, nfd, 0 };
    if (result == 0) result = read_back(&rd);
    /* The caller's working directory, when the init resolves binds beneath it. */
    int entered = result == 0 && needs_cwd((const struct sbx_spec *)body);
    if (entered && fchdir(fds[0]) < 0) result = -errno;
    int premade = result == 0 && enter_premade_netns((struct sbx_spec *)body);
    if (result == 0) result = sbx_spawn_here((const struct sbx_spec *)body, CLONE_PARENT, &pidfd);
    if (premade) leave_premade_netns(premade);
    /* The next init is a copy of this process: nothing of this request (argv, env,
     * file contents, its directory) may be in it. */
    explicit_bzero(body, h.len);
    if (entered && chdir("/") < 0) return -1;
    r = send_with_fds(sock, &result, sizeof result, &pidfd, pidfd >= 0 ? 1 : 0);
    if (pidfd >= 0) close(pidfd);
    release_request(fds, nfd);
    reap_closers();
    make_netns_ahead();
    return r < 0 ? -1 : 0;
}

static _Noreturn void spawner_main(int sock, pid_t server) {
    /* Ends with the server: the death signal, and a server that died before it was
     * armed seen by getppid (PDEATHSIG fires only for a parent alive when set). */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != server) _exit(0);
    prctl(PR_SET_NAME, "sandbox-spawner", 0, 0, 0);
    /* Nothing of the server's but its stdio and the socket. */
    if (sock != 3) { if (dup3(sock, 3, O_CLOEXEC) < 0) _exit(0); sock = 3; }
    syscall(SYS_close_range, 4, ~0U, 0);
    unsigned char *body = mmap(NULL, SPAWNER_MAX_BODY, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (body == MAP_FAILED) _exit(0);
    host_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    make_netns_ahead();
    while (serve_one(sock, body) == 0) {}
    _exit(0);
}

int sbx_spawner_start(void) {
    int r = sbx_harden_root();
    if (r < 0) return r;
    pthread_mutex_lock(&spawner.lock);
    if (spawner.sock >= 0) { pthread_mutex_unlock(&spawner.lock); return -EALREADY; }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) { r = -errno; pthread_mutex_unlock(&spawner.lock); return r; }
    pid_t server = getpid();
    int pidfd = -1;
    /* The spawner clones sandboxes with a uid of their own (sbx_spawn_here takes the
     * dumpable lock). */
    long pid = sbx_copy_process(&pidfd);
    if (pid == 0) { close(sv[0]); spawner_main(sv[1], server); }
    r = pid < 0 ? (int)pid : 0;
    close(sv[1]);
    /* No wait on the spawner is unbounded: one that neither takes a request nor
     * answers within 10 s is ended (end_spawner) and runs are cloned here. */
    struct timeval limit = { SPAWNER_TIMEOUT_S, 0 };
    if (r == 0 && (setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit) < 0 ||
                   setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit) < 0)) {
        r = -errno;
        sbx_pidfd_send_signal(pidfd, SIGKILL);
        int code, status;
        sbx_pidfd_wait(pidfd, &code, &status, NULL);
        close(pidfd);
    }
    if (r < 0) close(sv[0]);
    else { spawner.sock = sv[0]; spawner.pidfd = pidfd; }
    pthread_mutex_unlock(&spawner.lock);
    return r;
}

/* Closes the socket, kills the spawner and reaps it once it has exited, waiting at
 * most `wait_ms`: one stuck where no signal reaches (a forced flush of a FUSE file)
 * is left as it is rather than hold every later run, and reaped with the server.
 * Under the lock. */
static void end_spawner(int wait_ms) {
    if (spawner.sock < 0) return;
    close(spawner.sock);
    spawner.sock = -1;
    sbx_pidfd_send_signal(spawner.pidfd, SIGKILL);
    struct pollfd p = { spawner.pidfd, POLLIN, 0 };
    int code, status;
    if (poll(&p, 1, wait_ms) == 1) sbx_pidfd_wait(spawner.pidfd, &code, &status, NULL);   /* exited: no wait */
    close(spawner.pidfd);
    spawner.pidfd = -1;
}

void sbx_spawner_stop(void) {
    pthread_mutex_lock(&spawner.lock);
    end_spawner(2000);
    pthread_mutex_unlock(&spawner.lock);
}

int sbx_spawner_running(void) {
    return __atomic_load_n(&spawner.sock, __ATOMIC_RELAXED) >= 0;
}

int sbx_spawner_spawn(const struct sbx_spec *spec, int *pidfd_out, pid_t *pid_out) {
    if (__atomic_load_n(&spawner.sock, __ATOMIC_RELAXED) < 0) return 0;
    int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (cwd < 0) { *pid_out = -errno; return 1; }
    struct writer *w = calloc(1, sizeof *w);
    if (!w) { close(cwd); return 0; }
    int r = flatten(spec, cwd, w);
    if (r < 0) { free(w->buf); free(w); close(cwd); return 0; }   /* does not fit: here */
    struct wire_header h;
    memset(&h, 0, sizeof h);
    h.magic = SPAWNER_MAGIC; h.nfds = (uint32_t)w->nfd; h.len = w->len;
    for (size_t i = 0; i < w->nfd; i++) {
        int flags = fcntl(w->fds[i], F_GETFD);
        if (flags < 0) { r = -errno; break; }
        if (flags & FD_CLOEXEC) h.cloexec[i / 8] |= (uint8_t)(1u << (i % 8));
    }
    int handled = 1;
    pthread_mutex_lock(&spawner.lock);
    if (r == 0 && spawner.sock < 0) handled = 0;               /* stopped meanwhile */
    else if (r == 0) {
        /* A failure after the whole request was sent (no reply, or one out of step)
         * ends the spawner, and later runs clone here; this run fails: the spawner
         * may have cloned it, and a second init must not read the same channels. */
        int broken = 0;
        r = send_with_fds(spawner.sock, &h, sizeof h, w->fds, w->nfd);
        if (r == 0) r = send_all(spawner.sock, w->buf, w->len);
        /* Not all sent: the spawner had gone before reading the whole request, so
         * it cloned nothing and this run can be cloned here. */
        if (r < 0) { end_spawner(100); handled = 0; }
        else {
            int64_t result = 0;
            size_t n = 0;
            int pidfd = -1;
            r = recv_with_fds(spawner.sock, &result, sizeof result, &pidfd, 1, &n);
            if (r < 0) { broken = 1; if (r == -EAGAIN) r = -ETIMEDOUT; }
            else if (result > 0 && n == 1) { *pidfd_out = pidfd; *pid_out = (pid_t)result; }
            else {
                if (n) close(pidfd);
                if (result < 0 && result >= -4095) r = (int)result;   /* the clone's own error */
                else { r = -EPROTO; broken = 1; }
            }
            if (broken) end_spawner(100);
        }
    }
    pthread_mutex_unlock(&spawner.lock);
    if (handled && r < 0) *pid_out = r;
    free(w->buf); free(w); close(cwd);
    return handled;
}

int sbx_spawner_roundtrip(const struct sbx_spec *spec, void (*check)(const struct sbx_spec *copy, void *ctx), void *ctx) {
    struct writer *w = calloc(1, sizeof *w);
    if (!w) return -ENOMEM;
    int r = flatten(spec, 0, w);
    if (r == 0) {
        int fds[SPAWNER_MAX_FDS];
        for (size_t i = 0; i < w->nfd; i++) fds[i] = (int)i;
        struct reader rd = { w->buf, w->len, fds, w->nfd, 0 };
        r = read_back(&rd);
        if (r == 0) check((const struct sbx_spec *)w->buf, ctx);
    }
    free(w->buf); free(w);
    return r;
}

/* ---- The command of a sandbox built ahead (sandbox_spawner.h). ---- */

#define COMMAND_MAGIC 0x44435853u      /* "SXCD" */
#define COMMAND_MAX_FDS 5              /* exec_fd, script_fd, stdin, stdout, stderr */

/* The body is laid out as flatten's: a struct sbx_spec first (only the command
 * fields set, every other zero), then what its pointers and indexes name. */
static int flatten_command(const struct sbx_spec *spec, struct writer *w) {
    struct sbx_spec s;
    memset(&s, 0, sizeof s);
    put(w, &s, sizeof s);
    s.argv = put_strings(w, spec->argv);
    s.envp = put_strings(w, spec->envp);
    s.search_path = put_string(w, spec->search_path);
    s.exec_fd = put_fd(w, spec->exec_fd);
    s.exec_argv = put_strings(w, spec->exec_argv);
    s.exec_ctime_sec = spec->exec_ctime_sec; s.exec_ctime_nsec = spec->exec_ctime_nsec;
    s.exec_size = spec->exec_size; s.exec_leased = spec->exec_leased;
    s.exec_view = put_string(w, spec->exec_view);
    s.script_fd = put_fd(w, spec->script_fd);
    s.script_ctime_sec = spec->script_ctime_sec; s.script_ctime_nsec = spec->script_ctime_nsec;
    s.script_size = spec->script_size;
    for (int i = 0; i < 3; i++) s.stdio_fds[i] = put_fd(w, spec->stdio_fds[i]);
    if (w->err) return -w->err;
    memcpy(w->buf, &s, sizeof s);
    return 0;
}

int sbx_command_send(int sock, const struct sbx_spec *command) {
    struct writer *w = calloc(1, sizeof *w);
    if (!w) return -ENOMEM;
    int r = flatten_command(command, w);
    if (r == 0 && w->nfd > COMMAND_MAX_FDS) r = -EMFILE;
    if (r == 0) {
        struct wire_header h;
        memset(&h, 0, sizeof h);
        h.magic = COMMAND_MAGIC; h.nfds = (uint32_t)w->nfd; h.len = w->len;
        r = send_with_fds(sock, &h, sizeof h, w->fds, w->nfd);
        if (r == 0) r = send_all(sock, w->buf, w->len);
    }
    free(w->buf); free(w);
    return r;
}

int sbx_command_receive(int sock, struct sbx_spec *into) {
    struct wire_header h;
    int fds[COMMAND_MAX_FDS];
    size_t nfd = 0;
    int r = recv_with_fds(sock, &h, sizeof h, fds, COMMAND_MAX_FDS, &nfd);
    if (r < 0) { for (size_t i = 0; i < nfd; i++) close(fds[i]); return r; }
    unsigned char *body = MAP_FAILED;
    if (h.magic != COMMAND_MAGIC || h.nfds != nfd || h.len < sizeof(struct sbx_spec) || h.len > SPAWNER_MAX_BODY) r = -EPROTO;
    if (r == 0) {
        body = mmap(NULL, h.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (body == MAP_FAILED) r = -errno;
    }
    if (r == 0) r = recv_all(sock, body, h.len);
    struct reader rd = { body, h.len, fds, nfd, 0 };
    struct sbx_spec *s = (struct sbx_spec *)body;
    if (r == 0) {
        s->argv = get_strings(&rd, s->argv);
        s->envp = get_strings(&rd, s->envp);
        s->search_path = get_string(&rd, s->search_path);
        s->exec_fd = get_fd(&rd, s->exec_fd);
        s->exec_argv = get_strings(&rd, s->exec_argv);
        s->exec_view = get_string(&rd, s->exec_view);
        s->script_fd = get_fd(&rd, s->script_fd);
        for (int i = 0; i < 3; i++) s->stdio_fds[i] = get_fd(&rd, s->stdio_fds[i]);
        /* Something to run: execve and execveat read argv[0] and the vectors. */
        if (rd.bad || !s->argv || !s->argv[0] || !s->envp || (s->exec_fd >= 0 && !s->exec_argv)) r = -EPROTO;
    }
    if (r < 0) {
        for (size_t i = 0; i < nfd; i++) close(fds[i]);
        return r;
    }
    into->argv = s->argv; into->envp = s->envp; into->search_path = s->search_path;
    into->exec_fd = s->exec_fd; into->exec_argv = s->exec_argv;
    into->exec_ctime_sec = s->exec_ctime_sec; into->exec_ctime_nsec = s->exec_ctime_nsec;
    into->exec_size = s->exec_size; into->exec_leased = s->exec_leased;
    into->exec_view = s->exec_view;
    into->script_fd = s->script_fd;
    into->script_ctime_sec = s->script_ctime_sec; into->script_ctime_nsec = s->script_ctime_nsec;
    into->script_size = s->script_size;
    for (int i = 0; i < 3; i++) into->stdio_fds[i] = s->stdio_fds[i];
    return 0;
}
