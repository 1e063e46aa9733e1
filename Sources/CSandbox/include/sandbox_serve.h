/*
 * sandbox_serve.h — the socket calls of `sandbox serve` and its client that Swift's
 * Glibc module cannot express: SCM_RIGHTS and SO_PEERCRED (struct ucred and the
 * cmsg macros need _GNU_SOURCE), binding a unix socket by a directory fd, and
 * unshare(CLONE_FS) for a thread that runs a request in its client's directory.
 * Nothing here runs between clone and execve. Every function returns -errno on
 * failure.
 */
#ifndef SANDBOX_SERVE_H
#define SANDBOX_SERVE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A listening unix stream socket (CLOEXEC) named `name` in the directory `dirfd`
 * (bound through /proc/self/fd/<dirfd>/<name>, so no path outside the checked
 * directory is resolved again), created with mode `mode` (the umask is set around
 * bind, so it never exists with a looser one) and, when `gid` >= 0, that group.
 * `name` must be one component. An existing name is EADDRINUSE (bind never follows
 * a symlink planted there). */
int sbx_serve_listen(int dirfd, const char *name, unsigned mode, long gid, int backlog);

/* The peer's credentials (SO_PEERCRED) as of connect(). */
int sbx_serve_peer(int fd, uint32_t *uid, uint32_t *gid, int32_t *pid);

/* Whether the process `pidfd` names is in the PID namespace (nsfs `dev`, `ino`) this
 * process is in: 1, 0, -ESRCH if it is gone, or -errno. Read from the pidfd's fdinfo
 * (NSpid) when /proc is this process's namespace's: no access to the other process
 * is needed (a --group member's, or one not dumpable); else by
 * ioctl(PIDFD_GET_PID_NAMESPACE) (Linux 6.11), which needs ptrace read access. */
int sbx_pidfd_in_pidns(int pidfd, uint64_t dev, uint64_t ino);

/* The same for a connected unix socket's peer (SO_PEERPIDFD, Linux 6.5). */
int sbx_serve_peer_in_pidns(int fd, uint64_t dev, uint64_t ino);

/* The peer's supplementary groups (SO_PEERGROUPS): how many were written (at most
 * `max`), or -errno. */
int sbx_serve_peer_groups(int fd, uint32_t *groups, int max);

/* recvmsg with MSG_CMSG_CLOEXEC: up to `len` bytes and up to `max_fds` descriptors
 * (SCM_RIGHTS) into `fds`, their count in *n_fds; *truncated = 1 when the kernel cut
 * the descriptors short, or more than `max_fds` came (those past it are closed).
 * *sender: 1 if the message's sender (SCM_PIDFD, sbx_serve_listen sets
 * SO_PASSPIDFD) is in the PID namespace (`ns_dev`, `ns_ino`); 0 if it is in
 * another, or no pidfd came; -ESRCH if it is gone; -errno if its namespace could
 * not be read (sbx_pidfd_in_pidns). The kernel never
 * joins two senders' messages in one read. Returns the bytes read (0: EOF) or
 * -errno. */
ssize_t sbx_serve_recv(int fd, void *buf, size_t len, int *fds, int max_fds, int *n_fds, int *truncated,
                       uint64_t ns_dev, uint64_t ns_ino, int *sender);

/* sendmsg with MSG_NOSIGNAL: `len` bytes, and `n_fds` descriptors on the first. Returns
 * the bytes sent or -errno (EPIPE when the peer is gone, never SIGPIPE). */
ssize_t sbx_serve_send(int fd, const void *buf, size_t len, const int *fds, int n_fds);

/* accept4 with SOCK_CLOEXEC (accept4 needs _GNU_SOURCE): the fd or -errno. */
int sbx_serve_accept(int listen_fd);

/* A connected unix stream socket (CLOEXEC) to `path`, or -errno. */
int sbx_serve_connect(const char *path);

/* unshare(CLONE_FS) for the calling thread: from then on its working directory is
 * its own, so a request can run in its client's directory while others run in
 * theirs. Returns 0 or -errno. */
int sbx_serve_unshare_fs(void);

#ifdef __cplusplus
}
#endif
#endif
