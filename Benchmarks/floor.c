/*
 * floor: the kernel work the shipped `strict` policy asks for, and nothing else.
 *
 * A lower bound for any implementation of the same fences on this host, to put
 * beside bubblewrap (Benchmarks/floor.sh, Docs/benchmarks.md). Per run it makes,
 * in the order `sandbox exec` does:
 *   - the bind sources opened without following symlinks, cloned as detached trees,
 *     made read-only, nosuid and nodev (the strict policy's 10 ro binds);
 *   - a cgroup in each v1 hierarchy a limit needs (memory + swap, pids, cpu) with
 *     the limits written, or one v2 cgroup joined with CLONE_INTO_CGROUP;
 *   - a Landlock ruleset (ABI 5 file rights, TCP bind and connect) with a rule per
 *     bind source;
 *   - clone3 with new user (owned by a uid of the run's own), mount, PID, IPC, UTS,
 *     cgroup and network namespaces and a pidfd; the id maps written;
 *   - in the child (PID 1): inherited descriptors closed, death with its parent,
 *     a tmpfs root, the trees moved in, the symlinks, tmpfs
 *     /tmp, proc with the same read-only and masked entries, /dev (tmpfs, six
 *     nodes, a devpts instance, /dev/shm, symlinks), /etc/hosts on a tmpfs of its
 *     own, the root read-only, pivot_root, the working directory, hostname, a new
 *     session, two rlimits, the Landlock rules on sandbox paths, uid and gid 65534
 *     (real, effective, saved; no groups), no_new_privs, Landlock enforced, every
 *     capability dropped, strict's own seccomp filter (-f: the BPF `sandbox` compiled
 *     and cached; floor.sh finds it) or a synthetic one of the same size;
 *   - the payload forked by the PID 1 and exec'd with strict's environment; the
 *     PID 1 reaps it and exits;
 *   - the supervisor waits on the pidfd (with strict's 60 s timeout) and removes the
 *     cgroups. A failure, or SIGINT/SIGTERM/SIGHUP, kills the run and removes them.
 * Left out, because they are the project's choices rather than a fence: the plan,
 * the run directory and record, the uid lease files, the audit log and the denial
 * account, the binary check, the init's CPU pinning, the result's statistics.
 * Kept although a cheaper design would do (a review measured each, Docs/benchmarks.md,
 * session 40): a fresh cgroup and network namespace per run (a pool per uid lease
 * would share counters between runs), a PID 1 apart from the payload, tmpfs
 * instances of their own for /dev and /etc/hosts.
 *
 *   floor [-n RUNS] [-p WORKERS] [-f BPF_FILE | -b BPF_INSNS] [-x STEP,...] -- CMD ARGS...
 * With -p, WORKERS processes each make RUNS/WORKERS runs, and the rate is printed.
 * Needs root. Everything it makes is gone when it returns (cgroups removed,
 * namespaces die with the run).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <linux/audit.h>
#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP       /* Landlock ABI 4 */
#define LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0)
#define LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV   /* Landlock ABI 5; older uapi headers lack it */
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif

static char work_dir[512];
/* What a failure or a signal must undo: the live run's pidfd and cgroups. */
static volatile int live_pidfd = -1;
static char live_cg[3][1600];
static volatile int live_cg_count;

/* Kill the live run (if any), wait for it, remove its cgroups. Only system calls:
 * it runs in signal handlers too. */
static void undo_live_run(void) {
    if (live_pidfd >= 0) {
        siginfo_t si;
        syscall(SYS_pidfd_send_signal, live_pidfd, SIGKILL, NULL, 0);
        syscall(SYS_waitid, P_PIDFD, live_pidfd, &si, WEXITED, NULL);
        live_pidfd = -1;
    }
    for (int c = live_cg_count - 1; c >= 0; c--)
        for (int tries = 0; rmdir(live_cg[c]) < 0 && errno == EBUSY && tries < 1000; tries++) {
            struct timespec t = { 0, 100000 };
            nanosleep(&t, NULL);
        }
    live_cg_count = 0;
}
static void on_signal(int sig) {
    undo_live_run();
    _exit(128 + sig);
}
static void die(const char *what, const char *subject) {
    fprintf(stderr, "floor: %s %s: %s\n", what, subject ? subject : "", strerror(errno));
    undo_live_run();
    exit(125);
}
/* In the child: no stdio beyond this one message, then the status says it failed. */
static void child_die(const char *what) {
    char buf[256];
    int n = snprintf(buf, sizeof buf, "floor child: %s: %s\n", what, strerror(errno));
    if (n > 0) { ssize_t w = write(2, buf, (size_t)n); (void)w; }
    _exit(126);
}

struct bind { const char *path; int is_file; };
static struct bind binds[16];
static int n_binds;
static const char *const symlinks[][2] = {
    { "usr/bin", "bin" }, { "usr/lib", "lib" }, { "usr/lib64", "lib64" }, { "usr/sbin", "sbin" },
    { "/usr/share/zoneinfo/Etc/UTC", "etc/localtime" },
};
static const char hosts_text[] = "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n";

static uint64_t handled_fs;
static struct sock_fprog filter;
static char cg_base[3][512];    /* v1: memory, pids, cpu hierarchies' own directories */
static int cg_v2;               /* pure v2: one directory, CLONE_INTO_CGROUP */
static char cg_v2_base[1100];
static uid_t run_uid;
/* -x cgroups,proc-masks,landlock,seccomp,netns leaves those steps out, to see
 * what each costs. */
static int no_cgroups, no_masks, no_landlock, no_seccomp, no_netns;

static long sys_open_tree(int dfd, const char *p, unsigned f) { return syscall(SYS_open_tree, dfd, p, f); }
static long sys_move_mount(int fd, const char *fp, int td, const char *tp, unsigned f) {
    return syscall(SYS_move_mount, fd, fp, td, tp, f);
}
static long sys_mount_setattr(int dfd, const char *p, unsigned f, struct mount_attr *a) {
    return syscall(SYS_mount_setattr, dfd, p, f, a, sizeof *a);
}
static int setattr(int fd, uint64_t set, int recursive) {
    struct mount_attr a = { .attr_set = set };
    return (int)sys_mount_setattr(fd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &a);
}
/* A new filesystem, detached: fsopen, options, fsmount. */
static int new_fs(const char *type, const char *const *opts, unsigned attrs) {
    int fs = (int)syscall(SYS_fsopen, type, FSOPEN_CLOEXEC);
    if (fs < 0) return -1;
    for (int i = 0; opts && opts[i]; i += 2)
        if (syscall(SYS_fsconfig, fs, opts[i + 1] ? FSCONFIG_SET_STRING : FSCONFIG_SET_FLAG, opts[i], opts[i + 1], 0) < 0) {
            close(fs); return -1;
        }
    if (syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) { close(fs); return -1; }
    int m = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, attrs);
    close(fs);
    return m;
}
/* mkdir -p of `rel` under dirfd (the last component a file when is_file). */
static int make_path(int dirfd, const char *rel, int is_file) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", rel);
    for (char *s = buf + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdirat(dirfd, buf, 0755) < 0 && errno != EEXIST) return -1;
        *s = '/';
    }
    if (is_file) {
        int f = openat(dirfd, buf, O_WRONLY | O_CREAT | O_CLOEXEC, 0444);
        if (f < 0) return -1;
        close(f);
        return 0;
    }
    return mkdirat(dirfd, buf, 0755) < 0 && errno != EEXIST ? -1 : 0;
}
static int attach_at(int mnt, int root, const char *rel, int is_file) {
    if (make_path(root, rel, is_file) < 0) return -1;
    return (int)sys_move_mount(mnt, "", root, rel, MOVE_MOUNT_F_EMPTY_PATH);
}
static int tmpfs_at(int root, const char *rel, const char *mode, unsigned attrs) {
    const char *opts[] = { "mode", mode, NULL, NULL };
    int m = new_fs("tmpfs", opts, attrs);
    if (m < 0) return -1;
    int r = attach_at(m, root, rel, 0);
    close(m);
    return r;
}
static int ll_rule(int ruleset, int fd, uint64_t access) {
    struct landlock_path_beneath_attr a = { .allowed_access = access, .parent_fd = fd };
    return (int)syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &a, 0);
}
static int ll_rule_path(int ruleset, const char *path, uint64_t access) {
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0) return -1;
    int r = ll_rule(ruleset, fd, access);
    close(fd);
    return r;
}

#define RO_DIR (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define RO_FILE (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE)

struct run {
    int trees[16];
    int sync[2];
    int ruleset;
    int cg_tasks[3];
    int cg_v2_fd;
    char *const *argv;
};

static void build_proc(int root) {
    static const char *const readonly[] = { "sys", "sysrq-trigger", "irq", "bus", "fs" };
    static const char *const masked[] = {
        "kcore", "keys", "timer_list", "timer_stats", "sched_debug", "latency_stats", "interrupts",
        "acpi", "asound", "scsi", "kallsyms", "kpageflags", "kpagecount", "kpagecgroup", "slabinfo",
        "vmallocinfo", "iomem", "ioports", "buddyinfo", "pagetypeinfo", "zoneinfo", "kmsg", "config.gz",
        "cmdline",
    };
    int m = new_fs("proc", NULL, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
    if (m < 0 || attach_at(m, root, "proc", 0) < 0) child_die("proc");
    close(m);
    int proc = openat(root, "proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (proc < 0) child_die("open proc");
    for (size_t i = 0; i < sizeof readonly / sizeof *readonly; i++) {
        int t = (int)sys_open_tree(proc, readonly[i], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        if (t < 0) { if (errno == ENOENT) continue; child_die("proc ro"); }
        if (setattr(t, MOUNT_ATTR_RDONLY, 1) < 0 || sys_move_mount(t, "", proc, readonly[i], MOVE_MOUNT_F_EMPTY_PATH) < 0)
            child_die("proc ro attach");
        close(t);
    }
    int empty = -1;
    for (size_t i = 0; i < sizeof masked / sizeof *masked; i++) {
        struct stat st;
        if (fstatat(proc, masked[i], &st, AT_SYMLINK_NOFOLLOW) < 0) { if (errno == ENOENT) continue; child_die("proc stat"); }
        int mnt;
        if (S_ISDIR(st.st_mode)) {
            const char *opts[] = { "mode", "0000", "size", "4k", NULL, NULL };
            mnt = new_fs("tmpfs", opts, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
        } else {
            if (empty < 0) {
                int f = openat(root, ".mask", O_WRONLY | O_CREAT | O_CLOEXEC, 0);
                if (f < 0) child_die("mask file");
                close(f);
                empty = 1;
            }
            mnt = (int)sys_open_tree(root, ".mask", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
            if (mnt >= 0 && setattr(mnt, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, 0) < 0)
                child_die("mask attr");
        }
        if (mnt < 0 || sys_move_mount(mnt, "", proc, masked[i], MOVE_MOUNT_F_EMPTY_PATH) < 0) child_die("mask");
        close(mnt);
    }
    close(proc);
    if (empty > 0) unlinkat(root, ".mask", 0);
}

static void build_dev(int root) {
    if (tmpfs_at(root, "dev", "0755", MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC) < 0) child_die("dev");
    static const char *const nodes[] = { "null", "zero", "full", "random", "urandom", "tty" };
    char path[64];
    for (size_t i = 0; i < sizeof nodes / sizeof *nodes; i++) {
        snprintf(path, sizeof path, "/dev/%s", nodes[i]);
        int t = (int)sys_open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        if (t < 0) child_die("dev node");
        snprintf(path, sizeof path, "dev/%s", nodes[i]);
        if (setattr(t, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, 0) < 0 || attach_at(t, root, path, 1) < 0) child_die("dev node attach");
        close(t);
    }
    const char *pts_opts[] = { "newinstance", NULL, "ptmxmode", "0666", "mode", "620", "max", "64", NULL, NULL };
    int pts = new_fs("devpts", pts_opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
    if (pts < 0 || attach_at(pts, root, "dev/pts", 0) < 0) child_die("devpts");
    close(pts);
    if (tmpfs_at(root, "dev/shm", "1777", MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV) < 0) child_die("shm");
    static const char *const links[][2] = {
        { "pts/ptmx", "dev/ptmx" }, { "/proc/self/fd", "dev/fd" }, { "/proc/self/fd/0", "dev/stdin" },
        { "/proc/self/fd/1", "dev/stdout" }, { "/proc/self/fd/2", "dev/stderr" },
    };
    for (size_t i = 0; i < sizeof links / sizeof *links; i++)
        if (symlinkat(links[i][0], root, links[i][1]) < 0) child_die("dev symlink");
}

static void build_hosts(int root) {
    const char *opts[] = { "mode", "0755", "size", "64k", NULL, NULL };
    int m = new_fs("tmpfs", opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
    if (m < 0) child_die("hosts fs");
    int f = openat(m, "file", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    if (f < 0 || write(f, hosts_text, sizeof hosts_text - 1) != (ssize_t)(sizeof hosts_text - 1)) child_die("hosts write");
    close(f);
    int t = (int)sys_open_tree(m, "file", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    close(m);
    if (t < 0 || setattr(t, MOUNT_ATTR_RDONLY, 0) < 0 || attach_at(t, root, "etc/hosts", 1) < 0) child_die("hosts");
    close(t);
}

/* PID 1 of the run. */
static int child_main(struct run *r) {
    char b;
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) child_die("pdeathsig");
    /* Keep 0-2 and what the run needs; the invoker's other descriptors go. */
    int keep = r->sync[0] > r->sync[1] ? r->sync[0] : r->sync[1];
    if (r->ruleset > keep) keep = r->ruleset;
    for (int i = 0; i < n_binds; i++) if (r->trees[i] > keep) keep = r->trees[i];
    if (syscall(SYS_close_range, keep + 1, ~0U, 0) < 0) child_die("close_range");
    close(r->sync[1]);
    if (read(r->sync[0], &b, 1) != 1) _exit(125);
    close(r->sync[0]);
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) child_die("make private");
    const char *root_opts[] = { "mode", "0755", "size", "1m", NULL, NULL };
    int m = new_fs("tmpfs", root_opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
    if (m < 0 || sys_move_mount(m, "", AT_FDCWD, "/tmp", MOVE_MOUNT_F_EMPTY_PATH) < 0) child_die("root");
    close(m);
    int root = open("/tmp", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) child_die("open root");
    for (size_t i = 0; i < 4; i++)
        if (symlinkat(symlinks[i][0], root, symlinks[i][1]) < 0) child_die("symlink");
    if (tmpfs_at(root, "tmp", "1777", MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV) < 0) child_die("tmp");
    for (int i = 0; i < n_binds; i++) {
        if (attach_at(r->trees[i], root, binds[i].path + 1, binds[i].is_file) < 0) child_die(binds[i].path);
        close(r->trees[i]);
    }
    if (symlinkat(symlinks[4][0], root, symlinks[4][1]) < 0) child_die("localtime");
    if (no_masks) {
        int pm = new_fs("proc", NULL, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
        if (pm < 0 || attach_at(pm, root, "proc", 0) < 0) child_die("proc");
        close(pm);
    } else build_proc(root);
    build_dev(root);
    build_hosts(root);
    if (setattr(root, MOUNT_ATTR_RDONLY, 0) < 0) child_die("root ro");
    if (fchdir(root) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
        child_die("pivot_root");
    close(root);
    if (chdir(work_dir) < 0) child_die("chdir");
    if (sethostname("sandbox", 7) < 0) child_die("hostname");
    if (setsid() < 0) child_die("setsid");
    struct rlimit core = { 0, 0 }, nofile = { 1024, 1024 };
    if (setrlimit(RLIMIT_CORE, &core) < 0 || setrlimit(RLIMIT_NOFILE, &nofile) < 0) child_die("rlimit");
    uint64_t all = handled_fs;
    if (!no_landlock && (ll_rule_path(r->ruleset, "/", LANDLOCK_ACCESS_FS_READ_DIR) < 0
        || ll_rule_path(r->ruleset, "/tmp", all) < 0
        || ll_rule_path(r->ruleset, "/dev", LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE
                        | LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_IOCTL_DEV) < 0
        || ll_rule_path(r->ruleset, "/dev/shm", all) < 0
        || ll_rule_path(r->ruleset, "/proc", LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR
                        | LANDLOCK_ACCESS_FS_WRITE_FILE) < 0
        || ll_rule_path(r->ruleset, "/etc/hosts", LANDLOCK_ACCESS_FS_READ_FILE) < 0))
        child_die("landlock rule");
    /* Real, effective and saved ids all 65534 (the run's host uid), no groups. */
    if (syscall(SYS_setgroups, 0, NULL) < 0 || syscall(SYS_setresgid, 65534, 65534, 65534) < 0
        || syscall(SYS_setresuid, 65534, 65534, 65534) < 0) child_die("set ids");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) child_die("no_new_privs");
    if (!no_landlock) {
        if (syscall(SYS_landlock_restrict_self, r->ruleset, 0) < 0) child_die("landlock_restrict_self");
        close(r->ruleset);
    }
    /* Every capability: the bounding set, then the process's own sets. */
    for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) child_die("capbset");
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0) child_die("ambient");
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2] = { { 0 } };
    if (syscall(SYS_capset, &h, d) < 0) child_die("capset");
    if (!no_seccomp && syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &filter) < 0) child_die("seccomp");
    pid_t p = fork();
    if (p < 0) child_die("fork");
    if (p == 0) {
        static char *const env[] = { "HOME=/tmp", "LANG=C.UTF-8", "PATH=/usr/local/bin:/usr/bin:/bin", "TERM=xterm", NULL };
        execve(r->argv[0], r->argv, env);
        child_die("execve");
    }
    int status;
    for (;;) {
        pid_t w = waitpid(-1, &status, 0);
        if (w == p) break;
        if (w < 0 && errno != EINTR) child_die("waitpid");
    }
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

static void write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) die("write", path);
    close(fd);
}

static int one_run(char *const *argv, unsigned seq) {
    struct run r = { .argv = argv, .cg_v2_fd = -1 };
    /* Bind sources: opened without following a symlink, checked, cloned, fenced. */
    for (int i = 0; i < n_binds; i++) {
        struct open_how how = { .flags = O_PATH | O_CLOEXEC | O_NOFOLLOW, .resolve = RESOLVE_NO_SYMLINKS };
        int src = (int)syscall(SYS_openat2, AT_FDCWD, binds[i].path, &how, sizeof how);
        struct stat st;
        if (src < 0 || fstat(src, &st) < 0) die("open source", binds[i].path);
        r.trees[i] = (int)sys_open_tree(src, "", OPEN_TREE_CLONE | AT_RECURSIVE | AT_EMPTY_PATH);
        if (r.trees[i] < 0 || setattr(r.trees[i], MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 1) < 0)
            die("bind tree", binds[i].path);
        if (i == 0 && !no_landlock) {
            /* The uapi struct of Landlock ABI 4 (older headers lack the net field). */
            struct { uint64_t fs, net; } ra = {
                handled_fs, LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP };
            r.ruleset = (int)syscall(SYS_landlock_create_ruleset, &ra, sizeof ra, 0);
            if (r.ruleset < 0) die("landlock_create_ruleset", NULL);
        }
        if (!no_landlock && ll_rule(r.ruleset, src, binds[i].is_file ? RO_FILE : RO_DIR) < 0) die("landlock rule", binds[i].path);
        close(src);
    }
    /* Cgroups: the limits of strict (memory 512 MiB, swap 0, pids 64, cpu 1). */
    if (no_cgroups) {
    } else if (cg_v2) {
        snprintf(live_cg[0], sizeof live_cg[0], "%s/floor-%d-%u", cg_v2_base, getpid(), seq);
        if (mkdir(live_cg[0], 0755) < 0) die("mkdir", live_cg[0]);
        live_cg_count = 1;
        char f[700];
        snprintf(f, sizeof f, "%s/memory.max", live_cg[0]); write_file(f, "536870912");
        snprintf(f, sizeof f, "%s/memory.swap.max", live_cg[0]); write_file(f, "0");
        snprintf(f, sizeof f, "%s/pids.max", live_cg[0]); write_file(f, "64");
        snprintf(f, sizeof f, "%s/cpu.max", live_cg[0]); write_file(f, "100000 100000");
        r.cg_v2_fd = open(live_cg[0], O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (r.cg_v2_fd < 0) die("open", live_cg[0]);
    } else {
        static const char *const files[3][2][2] = {
            { { "memory.limit_in_bytes", "536870912" }, { "memory.memsw.limit_in_bytes", "536870912" } },
            { { "pids.max", "64" }, { NULL, NULL } },
            { { "cpu.cfs_period_us", "100000" }, { "cpu.cfs_quota_us", "100000" } },
        };
        for (int c = 0; c < 3; c++) {
            snprintf(live_cg[c], sizeof live_cg[c], "%s/floor-%d-%u", cg_base[c], getpid(), seq);
            if (mkdir(live_cg[c], 0755) < 0) die("mkdir", live_cg[c]);
            live_cg_count = c + 1;
            char f[700];
            for (int k = 0; k < 2 && files[c][k][0]; k++) {
                snprintf(f, sizeof f, "%s/%s", live_cg[c], files[c][k][0]);
                write_file(f, files[c][k][1]);
            }
            snprintf(f, sizeof f, "%s/tasks", live_cg[c]);
            r.cg_tasks[c] = open(f, O_WRONLY | O_CLOEXEC);
            if (r.cg_tasks[c] < 0) die("open", f);
        }
    }
    if (pipe2(r.sync, O_CLOEXEC) < 0) die("pipe2", NULL);
    /* The user namespace is owned by the run's uid: clone as it, capabilities raised. */
    if (syscall(SYS_setresgid, -1, run_uid, -1) < 0 || syscall(SYS_setresuid, -1, run_uid, -1) < 0) die("setresuid", NULL);
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) < 0) die("capget", NULL);
    d[0].effective = d[0].permitted; d[1].effective = d[1].permitted;
    if (syscall(SYS_capset, &h, d) < 0) die("capset", NULL);
    int pidfd = -1;
    struct clone_args ca = {
        .flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP
                 | (no_netns ? 0 : CLONE_NEWNET) | CLONE_PIDFD | (cg_v2 && !no_cgroups ? CLONE_INTO_CGROUP : 0),
        .pidfd = (uint64_t)(uintptr_t)&pidfd, .exit_signal = SIGCHLD,
        .cgroup = cg_v2 && !no_cgroups ? (uint64_t)r.cg_v2_fd : 0,
    };
    long pid = syscall(SYS_clone3, &ca, sizeof ca);
    if (pid == 0) _exit(child_main(&r));
    int e = errno;
    if (syscall(SYS_setresuid, -1, 0, -1) < 0 || syscall(SYS_setresgid, -1, 0, -1) < 0) die("setresuid back", NULL);
    errno = e;
    if (pid < 0) die("clone3", NULL);
    live_pidfd = pidfd;
    close(r.sync[0]);
    char path[64], map[64];
    snprintf(map, sizeof map, "65534 %u 1\n", run_uid);
    snprintf(path, sizeof path, "/proc/%ld/uid_map", pid); write_file(path, map);
    snprintf(path, sizeof path, "/proc/%ld/gid_map", pid); write_file(path, map);
    if (no_cgroups) {
    } else if (!cg_v2) {
        char num[24];
        int n = snprintf(num, sizeof num, "%ld", pid);
        for (int c = 0; c < 3; c++) {
            if (write(r.cg_tasks[c], num, (size_t)n) != n) die("join cgroup", live_cg[c]);
            close(r.cg_tasks[c]);
        }
    } else close(r.cg_v2_fd);
    for (int i = 0; i < n_binds; i++) close(r.trees[i]);
    if (!no_landlock) close(r.ruleset);
    if (write(r.sync[1], "g", 1) != 1) die("sync", NULL);
    close(r.sync[1]);
    /* strict's timeout: 60 s, then the run is killed (undo_live_run). */
    struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
    for (;;) {
        int n = poll(&pfd, 1, 60000);
        if (n > 0) break;
        if (n == 0) { errno = ETIMEDOUT; die("run", "timed out"); }
        if (errno != EINTR) die("poll", NULL);
    }
    siginfo_t si;
    if (syscall(SYS_waitid, P_PIDFD, pidfd, &si, WEXITED, NULL) < 0) die("waitid", NULL);
    live_pidfd = -1;
    close(pidfd);
    undo_live_run();   /* the cgroups, now empty */
    return si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
}

/* The invoker's own directory in a v1 hierarchy (from /proc/self/cgroup). */
static void v1_base(const char *controller, char *out, size_t size) {
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f) die("open", "/proc/self/cgroup");
    char line[1024];
    out[0] = 0;
    while (fgets(line, sizeof line, f)) {
        char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
        if (!b) continue;
        *b = 0;
        char *list = a + 1, *tok, *save;
        for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
            if (strcmp(tok, controller) == 0) {
                b[1 + strcspn(b + 1, "\n")] = 0;
                snprintf(out, size, "/sys/fs/cgroup/%s%s", controller, strcmp(b + 1, "/") == 0 ? "" : b + 1);
            }
    }
    fclose(f);
    if (!out[0]) { errno = ENOENT; die("no v1 hierarchy for", controller); }
}

int main(int argc, char **argv) {
    long runs = 1, workers = 0, insns = 470;
    const char *without = NULL, *bpf_file = NULL;
    int i = 1;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (i + 1 >= argc) break;
        if (strcmp(argv[i], "-n") == 0) runs = atol(argv[++i]);
        else if (strcmp(argv[i], "-p") == 0) workers = atol(argv[++i]);
        else if (strcmp(argv[i], "-b") == 0) insns = atol(argv[++i]);
        else if (strcmp(argv[i], "-x") == 0) without = argv[++i];
        else if (strcmp(argv[i], "-f") == 0) bpf_file = argv[++i];
        else break;
    }
    if (i >= argc || strcmp(argv[i], "--") != 0 || i + 1 >= argc || runs < 1 || insns < 6 || insns > 4000) {
        fprintf(stderr, "usage: floor [-n RUNS] [-p WORKERS] [-f BPF_FILE | -b BPF_INSNS] [-x STEP,...] -- /ABS/CMD ARGS...\n");
        return 125;
    }
    char **cmd = argv + i + 1;
    if (cmd[0][0] != '/') { fprintf(stderr, "floor: the command must be an absolute path\n"); return 125; }
    if (without) {
        char list[256], *tok, *save;
        snprintf(list, sizeof list, "%s", without);
        for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (strcmp(tok, "cgroups") == 0) no_cgroups = 1;
            else if (strcmp(tok, "proc-masks") == 0) no_masks = 1;
            else if (strcmp(tok, "landlock") == 0) no_landlock = 1;
            else if (strcmp(tok, "seccomp") == 0) no_seccomp = 1;
            else if (strcmp(tok, "netns") == 0) no_netns = 1;
            else { fprintf(stderr, "floor: -x: unknown step %s\n", tok); return 125; }
        }
    }
    if (geteuid() != 0) { fprintf(stderr, "floor: needs root\n"); return 125; }

    static char cwd[512];
    if (!getcwd(cwd, sizeof cwd)) die("getcwd", NULL);
    snprintf(work_dir, sizeof work_dir, "%s", cwd);
    /* The invoker's descriptors are no run's: closed once here (each run's PID 1
     * closes what it inherits beyond its own as well). */
    syscall(SYS_close_range, 3, ~0U, 0);
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    struct { const char *p; int f; } wanted[] = {
        { "/usr", 0 }, { "/etc/alternatives", 0 }, { "/etc/ca-certificates", 0 }, { "/etc/group", 1 },
        { "/etc/ld.so.cache", 1 }, { "/etc/nsswitch.conf", 1 }, { "/etc/passwd", 1 }, { cwd, 0 },
        { "/etc/ssl/certs", 0 }, { "/etc/ssl/openssl.cnf", 1 },
    };
    for (size_t k = 0; k < sizeof wanted / sizeof *wanted; k++)
        if (access(wanted[k].p, F_OK) == 0) binds[n_binds++] = (struct bind){ wanted[k].p, wanted[k].f };

    int abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 5) { errno = ENOSYS; die("Landlock ABI 5 needed", NULL); }
    handled_fs = (LANDLOCK_ACCESS_FS_IOCTL_DEV << 1) - 1;

    if (bpf_file) {
        /* A raw program (struct sock_filter[]), e.g. strict's from the seccomp cache. */
        static struct sock_filter loaded[4096];
        int fd = open(bpf_file, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd < 0 ? -1 : read(fd, loaded, sizeof loaded);
        if (n <= 0 || n % (ssize_t)sizeof *loaded != 0) die("read BPF program", bpf_file);
        close(fd);
        filter.len = (unsigned short)(n / (ssize_t)sizeof *loaded);
        filter.filter = loaded;
    }
    /* Else a filter of `insns` instructions: the architecture checked, then a
     * linear chain of comparisons (dearer to attach than libseccomp's tree of the
     * same size: the kernel's per-syscall cache walks it for every number). */
    long pairs = (insns - 5) / 2;
    struct sock_filter *prog = calloc((size_t)(5 + 2 * pairs), sizeof *prog);
    int k = 0;
    prog[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    prog[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
    prog[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    prog[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    for (long q = 0; q < pairs; q++) {   /* numbers no table names: refused, never called */
        prog[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(1000 + q), 0, 1);
        prog[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
    }
    prog[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    if (!bpf_file) {
        filter.len = (unsigned short)k;
        filter.filter = prog;
    }

    struct stat st;
    cg_v2 = stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0;
    if (cg_v2) {
        FILE *f = fopen("/proc/self/cgroup", "re");
        char line[1024] = "";
        if (!f || !fgets(line, sizeof line, f)) die("read", "/proc/self/cgroup");
        fclose(f);
        line[strcspn(line, "\n")] = 0;
        snprintf(cg_v2_base, sizeof cg_v2_base, "/sys/fs/cgroup%s", strcmp(line + 3, "/") == 0 ? "" : line + 3);
    } else {
        v1_base("memory", cg_base[0], sizeof cg_base[0]);
        v1_base("pids", cg_base[1], sizeof cg_base[1]);
        v1_base("cpu", cg_base[2], sizeof cg_base[2]);
    }

    if (workers <= 0) {
        int status = 0;
        for (long n = 0; n < runs; n++) { run_uid = 1879040000u; status = one_run(cmd, (unsigned)n); }
        return status;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long w = 0; w < workers; w++) {
        pid_t p = fork();
        if (p < 0) die("fork", NULL);
        if (p == 0) {
            run_uid = 1879040000u + (uid_t)w;
            for (long n = w; n < runs; n += workers)
                if (one_run(cmd, (unsigned)n) != 0) { fprintf(stderr, "floor: a run failed\n"); _exit(1); }
            _exit(0);
        }
    }
    int failed = 0, status;
    while (wait(&status) > 0) failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%.0f\n", (double)runs / secs);
    return failed ? 1 : 0;
}
