/*
 * Kernel ABI constants the C files share: syscall numbers newer than the libc
 * headers may know, and the new mount API (kept here rather than included, because
 * glibc 2.36's <sys/mount.h> and <linux/mount.h> conflict when both are included).
 * Private to CSandbox: not under include/, so Swift never sees it.
 */
#ifndef SANDBOX_KERNEL_ABI_H
#define SANDBOX_KERNEL_ABI_H

#include <fcntl.h>
#include <stdint.h>
#include <sys/syscall.h>

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_fsconfig
#define SYS_fsconfig 431
#endif
#ifndef SYS_fsmount
#define SYS_fsmount 432
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif
#ifndef SYS_landlock_add_rule
#define SYS_landlock_add_rule 445
#endif
#ifndef SYS_landlock_restrict_self
#define SYS_landlock_restrict_self 446
#endif

#define SBX_CLONE_INTO_CGROUP 0x200000000ULL
#define SBX_OPEN_TREE_CLONE 1
#define SBX_AT_RECURSIVE 0x8000
#define SBX_MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#define SBX_MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#define SBX_FSCONFIG_SET_FLAG 0
#define SBX_FSCONFIG_SET_STRING 1
#define SBX_FSCONFIG_CMD_CREATE 6
#define SBX_FSOPEN_CLOEXEC 1
#define SBX_FSMOUNT_CLOEXEC 1
#define SBX_MOUNT_ATTR_RDONLY 0x1
#define SBX_MOUNT_ATTR_NOSUID 0x2
#define SBX_MOUNT_ATTR_NODEV 0x4
#define SBX_MOUNT_ATTR_NOEXEC 0x8
#define SBX_RESOLVE_NO_MAGICLINKS 0x02
#define SBX_RESOLVE_NO_SYMLINKS 0x04
#define SBX_RESOLVE_BENEATH 0x08
#define SBX_RESOLVE_IN_ROOT 0x10
/* <linux/magic.h>: the filesystem of namespace descriptors (/proc/<pid>/ns/<type>). */
#define SBX_NSFS_MAGIC 0x6e736673

/* struct clone_args up to `cgroup` (CLONE_ARGS_SIZE_VER2, Linux 5.7). */
struct sbx_clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
        set_tid, set_tid_size, cgroup;
};
struct sbx_mount_attr { uint64_t attr_set, attr_clr, propagation, userns_fd; };
struct sbx_open_how { uint64_t flags, mode, resolve; };

#endif
