/*
 * Mount objects the supervisor prepares before (or right after) clone3: bind
 * sources opened once by fd, idmapped detached trees for writable binds, and the
 * user namespaces behind them. Raw syscalls Swift cannot make (openat2, open_tree,
 * mount_setattr, clone3), each returning a result or -errno.
 */
#ifndef SANDBOX_MOUNTS_H
#define SANDBOX_MOUNTS_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#define SBX_RESOLVE_BENEATH_FLAG 0x08ULL
#define SBX_RESOLVE_NO_SYMLINKS_FLAG 0x04ULL
#define SBX_RESOLVE_IN_ROOT_FLAG 0x10ULL

/* openat2(dirfd, path, O_PATH|O_CLOEXEC[|O_NOFOLLOW], resolve). An empty path opens
 * dirfd itself (a new O_PATH fd for the same object). fd or -errno. */
int sbx_mounts_open_source(int dirfd, const char *path, uint64_t resolve);

/* st_dev/st_ino/mode of an fd. 0 or -errno. */
int sbx_mounts_identity(int fd, uint64_t *dev, uint64_t *ino, uint32_t *mode);

/* A detached recursive clone of the tree at `source_fd`, with nosuid+nodev
 * (+rdonly) set recursively and, when userns_fd >= 0, idmapped through that user
 * namespace. The mount fd, or -errno (*failed_step: 1 open_tree, 2 idmap, 3 attrs). */
int sbx_mounts_prepare_tree(int source_fd, int readonly, int userns_fd, int *failed_step);

/* A user namespace with exactly these maps ("inside outside count\n"), held by fd
 * only: a short-lived helper process is created in it, its maps are written, the
 * namespace is opened and the helper is reaped. fd or -errno. The helper shares
 * this memory (CLONE_VM) and only sleeps: nothing is copied for it. */
int sbx_mounts_make_userns(const char *uid_map, const char *gid_map);

/* The helper alone, in a new user namespace with no maps yet, on the stack that
 * ends at `stack_top` (16-byte aligned, at least 16 KiB below it, and alive until
 * the helper is reaped: it shares this memory). It sleeps until killed and dies
 * with the calling thread (PDEATHSIG). Its pid (its pidfd in *pidfd), or -errno.
 * For sbx_mounts_make_userns, and for the test that kills its creator. */
int sbx_mounts_spawn_userns_helper(void *stack_top, int *pidfd);

/* Write the uid/gid maps of `pid`, our own clone3'd child that has not been
 * reaped (so the pid cannot have been reused). 0 or -errno. */
int sbx_mounts_write_maps(pid_t pid, const char *uid_map, const char *gid_map);
/* /proc/<pid>/oom_score_adj of the caller's own unreaped child (its pid cannot name
 * another process); 0 or -errno. */
int sbx_mounts_write_oom_score_adj(pid_t pid, int value);

/* ioctl(pidfd, PIDFD_GET_NET_NAMESPACE): the child's network namespace. fd or -errno. */
int sbx_mounts_pidfd_netns(int pidfd);
/* ioctl(pidfd, PIDFD_GET_MNT_NAMESPACE): the child's mount namespace. fd or -errno. */
int sbx_mounts_pidfd_mntns(int pidfd);

/* statx(dirfd, name, AT_SYMLINK_NOFOLLOW): the later of its birth time and change
 * time (*is_birth: the filesystem records births), device and type bits.
 * 0 or -errno. */
int sbx_mounts_birth(int dirfd, const char *name, int64_t *sec, uint32_t *nsec, int *is_birth,
                     uint64_t *dev, uint32_t *mode);

/* The root directory of `pid` (/proc/<pid>/root followed: the process's own root,
 * as an O_PATH fd). fd or -errno. */
int sbx_mounts_open_root(pid_t pid);

/* statx(fd, "", AT_EMPTY_PATH): 1 when a mount sits on the object `fd` names
 * (STATX_ATTR_MOUNT_ROOT), 0 when not, -errno (-EOPNOTSUPP: the kernel does not say). */
int sbx_mounts_is_mount_root(int fd);

/* The id of the mount `fd` is on (statx STATX_MNT_ID, as /proc/PID/mountinfo
 * shows it). 0 or -errno. */
int sbx_mounts_mount_id(int fd, uint64_t *id);

/* The unique id (statx STATX_MNT_ID_UNIQUE, Linux 6.8: never reused) of the mount
 * at `path` (the topmost mount there; no symlink followed at its end, no automount).
 * 0, or -errno (-EOPNOTSUPP: the kernel gives none). */
int sbx_mounts_unique_id_at(const char *path, uint64_t *id);

/* Whether the mount `fd` is on is one of the caller's mount namespace (its id in
 * /proc/self/mountinfo): 1, 0, or -errno. */
int sbx_mounts_in_own_namespace(int fd);

/* /proc/self/mountinfo opened to watch the caller's mount namespace: the kernel
 * marks it when any mount of the namespace is made, changed or removed. fd or -errno. */
int sbx_mounts_events_open(void);
/* 1 when the namespace changed since `fd` was opened or last asked, else 0. */
int sbx_mounts_events_changed(int fd);

/* The filesystem type (statfs f_type) of what `fd` is open on, or -errno. */
long long sbx_fs_type(int fd);

/* Closes `fd` on a thread of its own (closed here when no thread can be made), so
 * that a caller can go on meanwhile: the last reference to a run's mount namespace
 * unmounts the run's whole tree inside close(2) (an expedited RCU grace period, then
 * every superblock of the run shut down). `wait` joins that thread; call it once. */
struct sbx_background_close { pthread_t thread; int fd; int started; };
void sbx_close_in_background(struct sbx_background_close *c, int fd);
void sbx_background_close_wait(struct sbx_background_close *c);

#endif
