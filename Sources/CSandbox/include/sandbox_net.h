/*
 * sandbox_net.h — the C half of the egress network facility
 * (Sources/SandboxKernel/Network/): what Swift cannot express or should not do on
 * its own threads.
 *
 *  - Namespace work happens on a dedicated, short-lived pthread: unshare(2) and
 *    setns(2) change only the calling thread, so the supervisor's own threads (and
 *    Swift's pooled workers) never leave the host network namespace.
 *  - The new mount API has no libc wrappers here (glibc 2.36): fsopen, fsconfig,
 *    fsmount, open_tree, mount_setattr are raw syscalls.
 *  - The netlink socket options (SOL_NETLINK, NETLINK_EXT_ACK, struct sockaddr_nl)
 *    come from <linux/netlink.h>, which Swift's Glibc module does not export.
 *
 * Nothing here runs between clone and execve. Every function returns -errno on
 * failure (never -1 with errno), so a caller on another thread reads the right code.
 */
#ifndef SANDBOX_NET_H
#define SANDBOX_NET_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A new network namespace as an O_CLOEXEC file descriptor. A dedicated thread
 * calls unshare(CLONE_NEWNET), opens /proc/thread-self/ns/net and exits; the fd is
 * then the only reference (no /run/netns name), so the namespace dies with its last
 * fd and its last process. Returns the fd or -errno. */
int sbx_net_new_netns(void);

/* A run's network namespace made on a thread of its own while the supervisor
 * prepares the rest (a cold `exec`: its creation, loopback and the per-namespace
 * tables, is most of what CLONE_NEWNET costs the clone). `start` creates the thread
 * (0 or -errno); `take` waits for it and returns the namespace's fd (O_CLOEXEC; lo
 * up when asked) or -errno, once. Owned by the initial user namespace, like a
 * server's namespace made ahead: only for a run that keeps no network capability
 * (`Executor.mayTakeNamespaceMadeAhead`). */
struct sbx_netns_ahead { pthread_t thread; int loopback_up; int fd; int err; };
int sbx_net_netns_ahead_start(struct sbx_netns_ahead *a, int loopback_up);
int sbx_net_netns_ahead_take(struct sbx_netns_ahead *a);

/* Runs fn(ctx) on a new thread that has joined `netns_fd` with setns(CLONE_NEWNET),
 * waits for it and returns 0. Sockets the callback opens (rtnetlink, libnftables)
 * belong to that namespace. Returns -errno, without calling fn, when the thread
 * cannot be created or cannot join. */
int sbx_net_run_in_netns(int netns_fd, void (*fn)(void *ctx), void *ctx);

/* An rtnetlink socket (NETLINK_ROUTE) in the caller's network namespace, bound,
 * O_CLOEXEC, with NETLINK_EXT_ACK (the kernel's error text comes back with the
 * errno) and NETLINK_CAP_ACK (acks do not echo the request). Returns fd or -errno. */
int sbx_net_rtnl_open(void);

/* The same for another netlink protocol (NETLINK_NETFILTER: nf_tables' generation
 * id and a run's refusal sets, read without libnftables). */
int sbx_net_netlink_open(int protocol);

/* Binds a netlink socket to a random address above every process id, then connects
 * it to the kernel. An unbound socket gets the process id as its address on first
 * use, and /proc/net/netlink lists the addresses of a namespace's sockets to anyone
 * in it: a socket the supervisor opens inside a run's network namespace would tell
 * the command the supervisor's host pid (red team, session 31). Connected, the
 * socket takes messages from the kernel only. 0 or -errno. */
int sbx_net_netlink_bind(int fd);

#ifdef __cplusplus
}
#endif

#endif
