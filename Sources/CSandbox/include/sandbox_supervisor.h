/*
 * Thin wrappers the supervisor (Swift) calls around the child it spawned: raw
 * syscalls and macros Swift cannot reach (pidfd_send_signal, waitid(P_PIDFD),
 * SCM_RIGHTS, pipe2, signalfd). They run in the supervisor, never in the child, so
 * they are kept out of child.c (which holds only what runs between clone3 and execve).
 */
#ifndef SANDBOX_SUPERVISOR_H
#define SANDBOX_SUPERVISOR_H

#include <signal.h>
#include <sys/resource.h>

int sbx_pidfd_send_signal(int pidfd, int sig);
/* waitid(P_PIDFD, WEXITED): returns 0 and fills code (CLD_*), status, rusage. */
int sbx_pidfd_wait(int pidfd, int *code, int *status, struct rusage *usage);
/* Receive one fd sent with SCM_RIGHTS (the seccomp listener); -1 on failure. */
int sbx_recv_fd(int sock);
/* pipe2(O_CLOEXEC) (hidden from Swift without _GNU_SOURCE); 0 or -errno. */
int sbx_pipe_cloexec(int fds[2]);
/* signalfd(CLOEXEC|NONBLOCK) for `mask`; fd or -errno. */
int sbx_signalfd(const sigset_t *mask);
/* The next pending signal number from a signalfd, or -1 when none is pending. */
int sbx_signalfd_next(int fd);
/* prctl(PR_SET_NAME): the calling thread's name (15 bytes kept); 0 or -errno. */
int sbx_set_thread_name(const char *name);

/* A thread's CPU affinity, saved and restored as opaque bits (1024 CPUs). */
typedef struct { unsigned long bits[16]; } sbx_cpumask;
/* The calling thread's affinity into *mask; 0 or -errno. */
int sbx_affinity_get(sbx_cpumask *mask);
/* The calling thread's affinity set to *mask; 0 or -errno. */
int sbx_affinity_set(const sbx_cpumask *mask);
/* The calling thread pinned to the CPU it runs on now; 0 or -errno. */
int sbx_affinity_pin_here(void);
/* A root process (euid 0) becomes not dumpable for the rest of its life
 * (prctl(PR_SET_DUMPABLE, 0)); anyone else: nothing. Called before anything copies
 * the process or shares its memory with a helper that is root in a namespace root
 * owns (sbx_spawn, sbx_probe_clone3, sbx_mounts_make_userns): any uid-0 process,
 * capabilities or not, passes the ptrace check on such a child as the namespace's
 * owner, unless the memory is not dumpable. 0 or -errno. */
int sbx_harden_root(void);
/* Whether sbx_harden_root made this process not dumpable. */
int sbx_is_hardened(void);
/* Serialises the moments the process's dumpable flag could be wrong with the
 * lifetime of an idmap helper (sbx_mounts_make_userns, sbx_spawn). */
void sbx_dumpable_lock(void);
void sbx_dumpable_unlock(void);
/* A copy of this process (clone3 without CLONE_VM, SIGCHLD at its exit; its pidfd
 * in *pidfd unless NULL) that may go on to make idmap helpers or spawn. The copy is
 * made under sbx_dumpable_lock, so its dumpable flag is not caught mid-change, and
 * the copy's lock is set free: a bare fork made while another thread held the lock
 * left the copy a lock no thread of its own would release, and it waited on it for
 * ever (HardeningBeforeAnyRunTests hung a CI run; CopyUnderTheDumpableLockTests).
 * The copy has one thread and runs only async-signal-safe code. 0 in the copy, its
 * pid in the caller, or -errno. */
long sbx_copy_process(int *pidfd);

#endif
