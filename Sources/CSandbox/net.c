/* The C half of the egress network facility; see include/sandbox_net.h. */
#define _GNU_SOURCE
#include "sandbox_net.h"
#include "kernel_abi.h"
#include "sandbox_child.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif
#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif


/* ---- Namespace threads ---------------------------------------------------- */

/* Only this thread moves to the new namespace; it exits right after, leaving the fd
 * as the namespace's only reference. */
static void *netns_ahead_thread(void *arg) {
    struct sbx_netns_ahead *a = arg;
    if (unshare(CLONE_NEWNET) != 0) { a->err = errno; return NULL; }
    /* The init could not bring lo up in a namespace its user namespace does not
     * own; this thread, root of the initial one, can. */
    if (a->loopback_up && sbx_loopback_up() < 0) { a->err = errno; return NULL; }
    a->fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (a->fd < 0) a->err = errno;
    return NULL;
}

int sbx_net_netns_ahead_start(struct sbx_netns_ahead *a, int loopback_up) {
    a->loopback_up = loopback_up;
    a->fd = -1;
    a->err = 0;
    int r = pthread_create(&a->thread, NULL, netns_ahead_thread, a);
    return r == 0 ? 0 : -r;
}

int sbx_net_netns_ahead_take(struct sbx_netns_ahead *a) {
    pthread_join(a->thread, NULL);
    if (a->fd >= 0) return a->fd;
    return a->err ? -a->err : -EIO;
}

int sbx_net_new_netns(void) {
    struct sbx_netns_ahead a;
    int r = sbx_net_netns_ahead_start(&a, 0);
    return r < 0 ? r : sbx_net_netns_ahead_take(&a);
}

struct in_netns_job { int netns_fd; void (*fn)(void *); void *ctx; int err; };

static void *in_netns_thread(void *arg) {
    struct in_netns_job *job = arg;
    /* setns(2) with CLONE_NEWNET is allowed in a multithreaded process and changes
     * this thread alone; the thread ends when fn returns. */
    if (setns(job->netns_fd, CLONE_NEWNET) != 0) { job->err = errno; return NULL; }
    job->fn(job->ctx);
    return NULL;
}

int sbx_net_run_in_netns(int netns_fd, void (*fn)(void *ctx), void *ctx) {
    struct in_netns_job job = { netns_fd, fn, ctx, 0 };
    pthread_t t;
    int r = pthread_create(&t, NULL, in_netns_thread, &job);
    if (r != 0) return -r;
    pthread_join(t, NULL);
    return -job.err;
}

/* ---- rtnetlink ----------------------------------------------------------- */

int sbx_net_rtnl_open(void) { return sbx_net_netlink_open(NETLINK_ROUTE); }

int sbx_net_netlink_bind(int fd) {
    struct sockaddr_nl addr;
    memset(&addr, 0, sizeof addr);
    addr.nl_family = AF_NETLINK;
    /* [2^22, 2^31): above PID_MAX_LIMIT, below the kernel's own automatic
     * addresses (counted down from -4096). Taken: another try. */
    for (int tries = 0;; tries++) {
        uint32_t r;
        if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) return errno ? -errno : -EIO;
        addr.nl_pid = (1u << 22) + r % ((1u << 31) - (1u << 22));
        if (bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0) break;
        if (errno != EADDRINUSE || tries == 16) return -errno;
    }
    struct sockaddr_nl kernel;
    memset(&kernel, 0, sizeof kernel);
    kernel.nl_family = AF_NETLINK;
    if (connect(fd, (struct sockaddr *)&kernel, sizeof kernel) != 0) return -errno;
    return 0;
}

int sbx_net_netlink_open(int protocol) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
    if (fd < 0) return -errno;
    int b = sbx_net_netlink_bind(fd);
    if (b < 0) { close(fd); return b; }
    int one = 1;
    if (setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}
