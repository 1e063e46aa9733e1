/*
 * sandbox_probe.h — read-only probes of what the kernel offers, for `sandbox doctor`
 * (SandboxKernel.HostFeatures). Each creates at most a short-lived child or socket
 * of its own and changes no host setting: in particular the audit probes only ask
 * (AUDIT_GET) and listen, never AUDIT_SET.
 *
 * Each returns 0 or -errno.
 */
#ifndef SANDBOX_PROBE_H
#define SANDBOX_PROBE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a probe child does after clone3, before it exits with 0 or the errno. */
enum sbx_probe_action {
    SBX_PROBE_EXIT = 0,          /* nothing */
    SBX_PROBE_SECCOMP_LOG = 1,   /* no_new_privs + an allow-all filter with SECCOMP_FILTER_FLAG_LOG */
    SBX_PROBE_SECCOMP_NOTIF = 2, /* no_new_privs + an allow-all filter with SECCOMP_FILTER_FLAG_NEW_LISTENER */
};

/* clone3(CLONE_PIDFD | flags) a child that does `action` and exits; then
 * pidfd_send_signal(pidfd, 0) and waitid(P_PIDFD). Returns 0 and the child's exit
 * status in *child_status (0, or the errno its action failed with), or -errno with
 * *step naming the call that failed ("clone3", "pidfd_send_signal", "waitid"). */
int sbx_probe_clone3(uint64_t flags, int action, int *child_status, const char **step);

/* The kernel audit state (struct audit_status of AUDIT_GET on NETLINK_AUDIT). Needs
 * CAP_AUDIT_CONTROL and the initial PID namespace (else -EPERM); -EPROTONOSUPPORT
 * without CONFIG_AUDIT. */
struct sbx_audit_status {
    uint32_t enabled;   /* 0 off, 1 on, 2 on and locked */
    uint32_t failure;
    uint32_t pid;       /* auditd's, 0 if none */
    uint32_t lost;
    uint32_t backlog;
    uint32_t backlog_limit;
};
int sbx_probe_audit_status(struct sbx_audit_status *out);

/* bind() a NETLINK_AUDIT socket to the read-only log group (AUDIT_NLGRP_READLOG), as
 * the denial reader does, and close it: -EPERM without CAP_AUDIT_READ. */
int sbx_probe_audit_readlog(void);

/* getrlimit(resource): the hard limit (RLIM_INFINITY as UINT64_MAX). */
int sbx_probe_hard_rlimit(int resource, uint64_t *hard);

#ifdef __cplusplus
}
#endif

#endif /* SANDBOX_PROBE_H */
