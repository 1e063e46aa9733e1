/* The socket calls of `sandbox serve` and its client (sandbox_serve.h). */
#define _GNU_SOURCE
#include "sandbox_serve.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* SO_PASSPIDFD and SCM_PIDFD (6.5), spelled out for older headers. */
#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76
#endif
#ifndef SCM_PIDFD
#define SCM_PIDFD 0x04
#endif

int sbx_serve_listen(int dirfd, const char *name, unsigned mode, long gid, int backlog) {
    if (strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..") || !*name) return -EINVAL;
    /* Bound under a temporary name and renamed into place once listening: a client
     * that finds the name can connect (between bind and listen it would be refused). */
    char tmp[64];
    snprintf(tmp, sizeof tmp, ".sandbox-serve.%d.tmp", (int)getpid());
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    int n = snprintf(a.sun_path, sizeof a.sun_path, "/proc/self/fd/%d/%s", dirfd, tmp);
    if (n < 0 || (size_t)n >= sizeof a.sun_path) return -ENAMETOOLONG;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    /* Every message a connection receives carries its sender's pidfd (SCM_PIDFD;
     * connections inherit the option from the listener, and a message sent before
     * the accept is stamped too): sbx_serve_recv checks each one's PID namespace. */
    int on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_PASSPIDFD, &on, sizeof on) < 0) { int e0 = errno; close(fd); return -e0; }
    unlinkat(dirfd, tmp, 0);   /* ours, from a server of this pid that died */
    /* The socket file gets 0777 & ~umask: with this umask it is never looser than
     * `mode` (0600 until the group is set), not even between bind and the chmod. */
    mode_t old = umask(0777 & ~(gid >= 0 ? 0600 : mode));
    int r = bind(fd, (struct sockaddr *)&a, sizeof a);
    int e = errno;
    umask(old);
    if (r < 0) { close(fd); return -e; }
    if ((gid >= 0 && (fchownat(dirfd, tmp, (uid_t)-1, (gid_t)gid, AT_SYMLINK_NOFOLLOW) < 0
                      || fchmodat(dirfd, tmp, mode, 0) < 0))
        || listen(fd, backlog) < 0
        /* Never over anything planted at the name meanwhile. */
        || renameat2(dirfd, tmp, dirfd, name, RENAME_NOREPLACE) < 0) {
        e = errno;
        unlinkat(dirfd, tmp, 0);
        close(fd);
        return -e;
    }
    return fd;
}

int sbx_serve_peer(int fd, uint32_t *uid, uint32_t *gid, int32_t *pid) {
    struct ucred c;
    socklen_t len = sizeof c;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len) < 0) return -errno;
    *uid = c.uid; *gid = c.gid; *pid = c.pid;
    return 0;
}

/* SO_PEERPIDFD (6.5) and PIDFD_GET_PID_NAMESPACE = _IO(PIDFS_IOCTL_MAGIC 0xFF, 5)
 * (6.11); spelled out for older headers. */
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif
#define SBX_PIDFD_GET_PID_NAMESPACE 0xFF05

/* The PID namespace (nsfs device and inode) of the process `pidfd` names. The
 * ioctl needs ptrace read access to that process: a peer of another uid (a --group
 * member) or not dumpable gets EACCES. */
static int pidfd_pidns(int pidfd, uint64_t *dev, uint64_t *ino) {
    int ns = ioctl(pidfd, SBX_PIDFD_GET_PID_NAMESPACE, 0);
    if (ns < 0) return -errno;
    struct stat st;
    int r = fstat(ns, &st);
    int e = errno;
    close(ns);
    if (r < 0) return -e;
    *dev = (uint64_t)st.st_dev; *ino = (uint64_t)st.st_ino;
    return 0;
}

/* The numbers after `key` in a /proc text (tab-separated, one line): how many, the
 * first in *first; -1 if the key is missing. */
static int proc_numbers(const char *text, const char *key, long *first) {
    const char *p = strstr(text, key);
    if (!p) return -1;
    p += strlen(key);
    int n = 0;
    while (*p && *p != '\n') {
        while (*p == '\t' || *p == ' ') p++;
        if (!*p || *p == '\n') break;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) return -1;
        if (n == 0) *first = v;
        n++;
        p = end;
    }
    return n;
}

static int read_text(const char *path, char *buf, size_t len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    /* To the end: /proc/self/status grows with the supplementary groups. A file
     * longer than `buf` is an error, not a text cut short. */
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, len - 1 - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { int e = errno; close(fd); return -e; }
        if (n == 0) break;
        got += (size_t)n;
        if (got == len - 1) { close(fd); return -EFBIG; }
    }
    close(fd);
    buf[got] = 0;
    return 0;
}

/* Whether /proc is this process's own PID namespace's (its NSpid has one entry):
 * then a pidfd's fdinfo tells, without any access to the process it names, whether
 * that process is in it. 1, 0, or not yet known (-1); the same answer for every
 * thread, so a race only computes it twice. */
static _Atomic int proc_is_own = -1;

static int pidfd_in_pidns_by_fdinfo(int pidfd) {
    if (proc_is_own < 0) {
        size_t size = 65536;
        char *st = malloc(size);
        long first = 0;
        proc_is_own = st != NULL && read_text("/proc/self/status", st, size) == 0
            && proc_numbers(st, "\nNSpid:", &first) == 1 && first == getpid();
        free(st);
    }
    if (!proc_is_own) return -ENOTSUP;
    char path[64], info[1024];
    /* This thread's descriptor table (a thread with a table of its own would find
     * another file under the number in the process's). */
    snprintf(path, sizeof path, "/proc/thread-self/fdinfo/%d", pidfd);
    int r = read_text(path, info, sizeof info);
    if (r < 0) return r;
    long first = 0;
    /* NSpid: the process's number in /proc's namespace and each one below it down to
     * its own; one entry: its own is /proc's, this process's. -1: it is gone; 0:
     * outside /proc's namespace. */
    int n = proc_numbers(info, "\nNSpid:", &first);
    if (n < 0) return -ENOTSUP;
    if (first == -1) return -ESRCH;
    return n == 1 && first > 0 ? 1 : 0;
}

int sbx_pidfd_in_pidns(int pidfd, uint64_t dev, uint64_t ino) {
    int r = pidfd_in_pidns_by_fdinfo(pidfd);
    if (r != -ENOTSUP) return r;
    uint64_t d = 0, i = 0;
    r = pidfd_pidns(pidfd, &d, &i);
    if (r < 0) return r;
    return d == dev && i == ino ? 1 : 0;
}

int sbx_serve_peer_in_pidns(int fd, uint64_t dev, uint64_t ino) {
    int pidfd = -1;
    socklen_t len = sizeof pidfd;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) < 0) return -errno;
    int r = sbx_pidfd_in_pidns(pidfd, dev, ino);
    close(pidfd);
    return r;
}

int sbx_serve_peer_groups(int fd, uint32_t *groups, int max) {
    socklen_t len = (socklen_t)(max * sizeof(gid_t));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) return -errno;
    return (int)(len / sizeof(gid_t));
}

ssize_t sbx_serve_recv(int fd, void *buf, size_t len, int *fds, int max_fds, int *n_fds, int *truncated,
                       uint64_t ns_dev, uint64_t ns_ino, int *sender) {
    /* Room for as many descriptors as a message can carry (SCM_MAX_FD, 253) and the
     * sender's pidfd: what a smaller buffer cut off, the kernel would close, but a
     * pidfd that did not fit would be missing; those past `max_fds` are closed here. */
    union { char buf[CMSG_SPACE(sizeof(int) * 253) + CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    if (max_fds > 16) max_fds = 16;
    *sender = 0;
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control.buf;
    m.msg_controllen = sizeof control.buf;
    *n_fds = 0;
    *truncated = 0;
    ssize_t n;
    do { n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC); } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_len < CMSG_LEN(0)) continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char *data = CMSG_DATA(c);
        if (c->cmsg_type == SCM_PIDFD && count >= 1) {
            int pidfd;
            memcpy(&pidfd, data, sizeof pidfd);
            /* A sender gone before the pidfd was made has none (a negative one). */
            if (pidfd >= 0) {
                *sender = sbx_pidfd_in_pidns(pidfd, ns_dev, ns_ino);
                close(pidfd);
            }
        } else if (c->cmsg_type == SCM_RIGHTS) {
            for (size_t i = 0; i < count; i++) {
                int got;
                memcpy(&got, data + i * sizeof(int), sizeof got);
                if (*n_fds < max_fds) fds[(*n_fds)++] = got;
                else { close(got); *truncated = 1; }
            }
        }
    }
    if (m.msg_flags & MSG_CTRUNC) *truncated = 1;
    return n;
}

ssize_t sbx_serve_send(int fd, const void *buf, size_t len, const int *fds, int n_fds) {
    if (n_fds > 16) return -EINVAL;
    char control[CMSG_SPACE(sizeof(int) * 16)];
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    if (n_fds > 0) {
        memset(control, 0, sizeof control);
        m.msg_control = control;
        m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n_fds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n_fds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)n_fds);
    }
    ssize_t n;
    do { n = sendmsg(fd, &m, MSG_NOSIGNAL); } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

int sbx_serve_accept(int listen_fd) {
    int fd;
    do { fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC); } while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : fd;
}

int sbx_serve_connect(const char *path) {
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof a.sun_path) return -ENAMETOOLONG;
    strcpy(a.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int r;
    do { r = connect(fd, (struct sockaddr *)&a, sizeof a); } while (r < 0 && errno == EINTR);
    if (r < 0) { int e = errno; close(fd); return -e; }
    return fd;
}

int sbx_serve_unshare_fs(void) {
    return unshare(CLONE_FS) < 0 ? -errno : 0;
}
