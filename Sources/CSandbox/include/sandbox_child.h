/*
 * The flat spec the supervisor (Swift) prepares before clone3, and the child runner
 * (C, async-signal-safe) that applies it between clone3 and execve.
 *
 * Everything the child needs is in `struct sbx_spec`: no allocation, no stdio, no
 * locks after clone3. Errors travel back on `error_fd` as a `struct sbx_child_error`
 * (step + index + errno); EOF on that pipe without a record means execve succeeded.
 */
#ifndef SANDBOX_CHILD_H
#define SANDBOX_CHILD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/resource.h>

/* Namespace flags (sched.h hides them without _GNU_SOURCE, which Swift lacks). */
#define SBX_CLONE_NEWNS     0x00020000ULL
#define SBX_CLONE_NEWCGROUP 0x02000000ULL
#define SBX_CLONE_NEWUTS    0x04000000ULL
#define SBX_CLONE_NEWIPC    0x08000000ULL
#define SBX_CLONE_NEWUSER   0x10000000ULL
#define SBX_CLONE_NEWPID    0x20000000ULL
#define SBX_CLONE_NEWNET    0x40000000ULL

enum sbx_mount_kind {
    SBX_MOUNT_BIND = 1,     /* recursive bind of `source` (no symlinks; must be `dev`/`ino`) at `dest` */
    SBX_MOUNT_TMPFS = 2,    /* fresh tmpfs at `dest`, options in `data` */
    SBX_MOUNT_PROC = 3,     /* procfs of the new pid namespace, knobs read-only */
    SBX_MOUNT_DEV = 4,      /* minimal /dev */
    SBX_MOUNT_SYMLINK = 5,  /* symlink `dest` -> `source` */
    SBX_MOUNT_PROTECT = 6,  /* `dest` made read-only again; skipped if absent */
    SBX_MOUNT_MASK = 7,     /* `dest` hidden: empty unreadable file / empty dir */
    SBX_MOUNT_MOVE_FD = 8,  /* detached mount `fd` (an idmapped rw bind) moved to `dest` */
    SBX_MOUNT_PIN = 9,      /* directory `dest` bound onto itself (cannot be renamed) */
    SBX_MOUNT_FILE = 10,    /* read-only file holding `data`, on a tmpfs of its own */
};

#define SBX_MF_RDONLY   0x1u
#define SBX_MF_OPTIONAL 0x2u  /* missing destination (protect): skip instead of failing */
#define SBX_MF_BENEATH_CWD 0x4u /* bind: `source` is relative to the working directory */
#define SBX_MF_SKIP 0x8u      /* bind: an optional source that is absent */

/* Descriptors the child may keep across its first close: its channels, the fence
 * fds, the v1 cgroup files, one per moved mount. The supervisor refuses a spec with
 * more mounts than fit; the child refuses a longer list at its own step rather than
 * close one it needs. */
#define SBX_MAX_KEEP 256

struct sbx_mount_op {
    int kind;
    unsigned flags;
    const char *source;
    const char *dest;     /* absolute, inside the new root */
    const char *data;     /* tmpfs options; FILE: the content */
    int fd;               /* MOVE_FD: the detached mount */
    uint64_t dev, ino;    /* BIND: the object the supervisor opened and checked */
};

struct sbx_rlimit {
    int resource;
    rlim_t soft;
    rlim_t hard;
};

struct sbx_landlock_inner {
    const char *path;     /* inside the new root */
    uint64_t access;
};

struct sbx_spec {
    /* Namespaces and placement. */
    uint64_t clone_flags;          /* CLONE_NEW* set; CLONE_PIDFD is added */
    /* Nested isolation (no namespaces can be made here): clone_flags is 0, and the
     * child runs nested_init_steps — no root — then the reaper's, as a child
     * subreaper that ends what the command leaves behind. */
    int nested;
    /* Tests only (SANDBOX_TEST_STATUS_BEFORE_SWEEP, debug builds): the namespaced
     * reaper writes the payload's status before the rest of the run is killed, and
     * exits 0.5 s later, as a reaper that left the sweep to its own exit would. */
    int test_status_before_sweep;
    int cgroup_fd;                 /* v2: CLONE_INTO_CGROUP target, or -1 */
    const int *cgroup_join_fds;   /* v1: `tasks` files the child writes "0" to */
    size_t n_cgroup_join_fds;
    int loopback_up;
    /* 1: the network namespace may be one a server's spawner made ahead
     * (sandbox_spawner.h), owned by the initial user namespace instead of the run's:
     * only for a run without egress and with no network capability kept (those act
     * in the namespace's owning user namespace). Ignored without a spawner. */
    int premade_netns_ok;
    /* A network namespace a server prepared for this run (an egress namespace with
     * the plan's ruleset already loaded, Docs/network.md), or -1. The spawner clones
     * the init in it instead of the one it made ahead; ignored without a spawner and
     * unless premade_netns_ok (the supervisor checks which namespace the init is in
     * before it counts on anything prepared). Set -1 explicitly: 0 is a descriptor. */
    int netns_fd;
    /* A cold run's network namespace made ahead (sbx_net_netns_ahead_take), or -1:
     * sbx_spawn_here clones the init in it (setns on the calling thread, then back)
     * instead of with CLONE_NEWNET, and fails rather than clone in the caller's
     * own. Not sent to a spawner (which makes its own). */
    int join_netns_fd;
    const char *uid_map;           /* rootless: "inside outside 1\n", else NULL */
    const char *gid_map;
    /* Root invoker, a uid of the run's own: clone3 runs with this effective uid, so
     * the new user namespace is owned by it and every per-user kernel counter of the
     * processes inside is charged to it, not to root. The supervisor writes the maps. */
    int has_userns_owner;
    uint32_t userns_owner;

    /* The new root. */
    const char *staging;           /* host dir the root tmpfs is mounted on */
    const struct sbx_mount_op *mounts;
    size_t n_mounts;

    /* The process. */
    const char *hostname;
    const struct sbx_rlimit *rlimits;
    size_t n_rlimits;
    uint32_t uid, gid;
    int new_session;
    const char *workdir;
    char *const *argv;
    char *const *envp;
    const char *search_path;       /* PATH for argv[0] without a slash */
    /* [binary]: the executable the supervisor resolved, opened and checked
     * (O_RDONLY|O_CLOEXEC), executed with execveat(AT_EMPTY_PATH) and `exec_argv`
     * (a script: its checked interpreter, with the script as /dev/fd/<script_fd>);
     * -1: execve argv[0] by path. `exec_ctime_*`/`exec_size` are what the
     * supervisor hashed; the child refuses the file if they changed (ESTALE). */
    int exec_fd;
    char *const *exec_argv;
    int64_t exec_ctime_sec, exec_ctime_nsec;
    int64_t exec_size;
    int exec_leased;               /* exec_fd holds a read lease: it must be unbroken */
    /* exec_fd's path inside the sandbox (symlinks resolved): the child opens it
     * again (O_PATH, no symlinks), requires the same inode and execs that, so the
     * command's /proc/self/exe is the sandbox's mount of the file (a read-only bind
     * stays read-only), not the host's. NULL: exec_fd itself (a sealed memfd). */
    const char *exec_view;
    int script_fd;                 /* the checked script (CLOEXEC cleared in the child), or -1 */
    int64_t script_ctime_sec, script_ctime_nsec;
    int64_t script_size;

    /* Fences, applied last, in this order: caps, no_new_privs, Landlock, seccomp. */
    uint64_t cap_keep;             /* bit n set = keep capability n */
    int apply_caps;                /* 0: leave capabilities alone (fence off) */
    int landlock_fd;               /* prepared ruleset, or -1 */
    unsigned landlock_restrict_flags; /* LANDLOCK_RESTRICT_SELF_* (ABI 7: denial logging) */
    const struct sbx_landlock_inner *landlock_inner;
    size_t n_landlock_inner;
    const void *seccomp_filter;    /* struct sock_filter[], or NULL */
    unsigned short seccomp_len;    /* instructions */
    unsigned seccomp_flags;        /* SECCOMP_FILTER_FLAG_* */
    const void *seccomp_unlogged;  /* installed after the filter, no flags, or NULL */
    unsigned short seccomp_unlogged_len;
    const void *seccomp_fence;     /* nested: the ioctl fence, installed after both, or NULL */
    unsigned short seccomp_fence_len;
    int notify_sock;               /* listener fd goes back over this, or -1 */

    /* Channels to the supervisor. */
    int sync_fd;                   /* read: one byte once the supervisor is ready */
    int error_fd;                  /* write, CLOEXEC: struct sbx_child_error */
    int status_fd;                 /* write: struct sbx_run_status, once */

    /* The command's stdin, stdout, stderr when not the supervisor's own 0, 1, 2 (a
     * server runs each request with its client's): dup'ed onto 0, 1, 2 first thing.
     * -1: inherit. */
    int stdio_fds[3];

    /* A sandbox built ahead of its command (a server's warm path, Docs/serve.md):
     * a unix stream socket on which the init, its root built and pivoted into,
     * waits for the command (SBX_STEP_COMMAND): argv, envp, search_path, the
     * [binary] fields and the stdio descriptors, which then replace the spec's own
     * (sbx_command_send, sandbox_spawner.h). EOF: the sandbox was let go unused,
     * and the init leaves. -1: the command is in this spec. */
    int command_fd;

    /* The supervisor's argv strings, argv[0] to the end of the last one's NUL (the
     * bytes /proc/<pid>/cmdline shows): the reaper overwrites its copy with
     * "sandbox-init" and NULs. NULL: left as is. */
    char *argv_area;
    size_t argv_area_len;
};

/* The child's steps, in the order it runs them (child.c's step lists): a failure is
 * reported as {step, index, errno}. Every code here is sent by exactly one step, and
 * every one has a name in Sources/SandboxKernel/Child.swift (ChildStepTests checks
 * both, against sbx_child_steps()). */
enum sbx_step {
    /* The sandbox init (PID 1), right after clone3. */
    SBX_STEP_SIGNALS = 1,          /* reset dispositions and mask */
    SBX_STEP_STDIO,                /* index = 0, 1 or 2 */
    SBX_STEP_KEEP_LIST,            /* index = descriptors the spec asks to keep (> SBX_MAX_KEEP) */
    SBX_STEP_CLOSE_FDS,
    SBX_STEP_PDEATHSIG,
    SBX_STEP_SYNC,                 /* a failed read; EOF (supervisor gone) sends nothing */
    SBX_STEP_CGROUP_JOIN,          /* index = cgroup tasks file */
    SBX_STEP_CGROUP_NAMESPACE,
    SBX_STEP_USERNS_MAP,           /* index 0 setgroups, 1 uid_map, 2 gid_map */
    SBX_STEP_HOSTNAME,
    SBX_STEP_LOOPBACK,
    SBX_STEP_MOUNT_PRIVATE,
    SBX_STEP_ROOT_TMPFS,
    SBX_STEP_MOUNT,                /* index = mount op */
    SBX_STEP_MASK_HELPER,
    SBX_STEP_ROOT_READONLY,
    SBX_STEP_PIVOT_ROOT,
    SBX_STEP_COMMAND,              /* built ahead: receive the command (index -1) or install its stdio (0-2) */
    SBX_STEP_PAYLOAD_STACK,        /* mmap the stack the payload runs on until execve */
    SBX_STEP_RLIMIT,               /* index = rlimit */
    /* PID 1 becomes the reaper. */
    SBX_STEP_REAPER_NAME,
    SBX_STEP_REAPER_SIGNALS,
    SBX_STEP_SUBREAPER,            /* nested: PR_SET_CHILD_SUBREAPER, open the children list */
    SBX_STEP_FORK,                 /* clone(CLONE_VM | CLONE_VFORK): the payload shares the init's memory until execve */
    SBX_STEP_REAPER_DUMPABLE,
    SBX_STEP_REAPER_CPU_LIMIT,     /* nested: lift the reaper's own RLIMIT_CPU */
    SBX_STEP_REAPER_CLOSE_FDS,
    /* The payload, PID 1's child, until execve. */
    SBX_STEP_PAYLOAD_SIGNALS,
    SBX_STEP_PAYLOAD_PDEATHSIG,    /* nested: die with the reaper */
    SBX_STEP_SETSID,
    SBX_STEP_PAYLOAD_RLIMIT,       /* nested: index = rlimit */
    SBX_STEP_PAYLOAD_OOM_SCORE,    /* nested: oom_score_adj 1000 for the payload */
    SBX_STEP_CAPS_BOUNDING,        /* index = capability */
    SBX_STEP_SECUREBITS,
    SBX_STEP_SETGROUPS,
    SBX_STEP_SETGID,
    SBX_STEP_SETUID,
    SBX_STEP_CAPS,                 /* index = capability raised in ambient, or -1 */
    SBX_STEP_SHARED_UNDUMPABLE,    /* namespaced: the memory shared with the reaper, after the uid change */
    SBX_STEP_KEYRING,              /* join a fresh session keyring */
    SBX_STEP_NO_NEW_PRIVS,
    SBX_STEP_CHDIR,
    SBX_STEP_LANDLOCK,             /* index = inner rule, or -1 for restrict_self */
    SBX_STEP_PAYLOAD_CLOSE_FDS,
    SBX_STEP_EXEC_CHECK,           /* index 0 the executable, 1 the script; ESTALE: changed */
    SBX_STEP_SECCOMP,
    SBX_STEP_NOTIFY_SEND,
    SBX_STEP_EXEC,
    SBX_STEP_PAYLOAD_AFFINITY,     /* restore the CPU affinity the init pinned for the fork */
    SBX_STEP_END                   /* one past the last code; not a step */
};

/* Nested: the supervisor's kill, sent to the reaper (SIGRTMAX, never forwarded
 * otherwise): it kills the payload and then every process of the run left. */
#define SBX_SIGNAL_END_RUN 64

/* What the sandbox's reaper writes on the status pipe once the run is over (every
 * other process of it killed and reaped): the payload's wait status, and the CPU time
 * of everything the reaper reaped (RUSAGE_CHILDREN: each process's own time flows to
 * whoever reaps it, and every process of the run was reaped here in the end) plus its
 * own (RUSAGE_SELF). The kernel's rusage totals are exact (the runtime it scheduled);
 * v1's cpuacct.usage_user/usage_sys are sampled at the tick. One write, below
 * PIPE_BUF: read whole or not at all. */
struct sbx_run_status {
    int32_t wait_status;
    uint32_t reserved;
    uint64_t cpu_user_us;
    uint64_t cpu_system_us;
};

struct sbx_child_error {
    int32_t step;
    int32_t index;
    int32_t err;
};

/*
 * Clone the sandbox init (PID 1 of the new pid namespace) with CLONE_PIDFD and run
 * `spec` in it. Returns the pid in the caller's namespace (> 0) and the pidfd in
 * *pidfd_out, or -errno. Call from a thread that lives as long as the run: the
 * child's PDEATHSIG fires when this *thread* exits. When this process started a
 * spawner (sandbox_spawner.h), the spawner clones it instead, as this process's
 * child, and the thread that matters is the one that started the spawner. A spec
 * built ahead (command_fd >= 0) is cloned only by the spawner: -EXDEV otherwise.
 */
pid_t sbx_spawn(const struct sbx_spec *spec, int *pidfd_out);
/* The clone itself, in this process, with `extra_flags` added (the spawner adds
 * CLONE_PARENT). */
pid_t sbx_spawn_here(const struct sbx_spec *spec, uint64_t extra_flags, int *pidfd_out);
/* `lo` up in the caller's network namespace (async-signal-safe): the init's own
 * step, and the spawner's for a namespace it made ahead. 0, or -1 with errno. */
int sbx_loopback_up(void);

/* The step codes of the child's step lists, in order (for the supervisor's tests:
 * every code is sent by one step and named in Swift). Returns how many there are;
 * copies at most `cap` of them into `out`. */
size_t sbx_child_steps(int32_t *out, size_t cap);

/* The supervisor's side (signal, wait, receive the listener): sandbox_supervisor.h. */

#endif
