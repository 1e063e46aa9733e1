#ifndef SANDBOX_LANDLOCK_OBSERVER_H
#define SANDBOX_LANDLOCK_OBSERVER_H

/*
 * The Landlock observer (Docs/denials.md): a BPF program on the entry of the kernel's
 * landlock_log_denial(), which Landlock calls for every denial BEFORE it looks at
 * whether kernel audit is on. It copies the request (type, rights, object) of each
 * process whose uid is watched into a ring buffer the supervisor reads, so Landlock's
 * denials reach the account on a host whose kernel audit is off — and nothing here
 * turns audit on or changes any other host setting: the program, its maps and its
 * attachment are descriptors of this process and vanish with it.
 *
 * The instructions are written here (no compiler for BPF at build time); the kernel's
 * structure offsets are read from its BTF (/sys/kernel/btf/vmlinux) when the
 * observer opens, so one binary works across kernels whose layouts differ.
 */

#include <stddef.h>
#include <stdint.h>

/* One decoded denial. */
struct sbx_ll_event {
    uint32_t uid;           /* the denied process's uid (host view): the run's lease */
    uint32_t pid;           /* its thread-group id (host view) */
    uint64_t mono_ns;       /* CLOCK_MONOTONIC when Landlock denied */
    uint32_t request;       /* enum landlock_request_type: 1 ptrace, 2 fs topology, 3 fs
                               access, 4 net access, 5 abstract unix socket, 6 signal */
    uint32_t access;        /* the denied rights, in the request type's Landlock bits */
    int32_t target_pid;     /* ptrace/signal: the target's thread-group id, else -1 */
    uint16_t port;          /* net access: the port (host order), else 0 */
    uint8_t object_partial; /* the path is not exact: its top is missing (shown as a
                               leading "…") or a name was cut (a trailing "…") */
    char target_comm[16];   /* ptrace/signal: the target's comm */
    char object[4096];      /* the path, or "@name" of an abstract socket, or "" */
};

struct sbx_ll_observer {
    int prog_fd, link_fd, ring_fd, uids_fd;
    void *consumer;      /* mmap'ed consumer page */
    void *producer;      /* mmap'ed producer page + data (twice, for wrap-around) */
    size_t ring_size;
    size_t page_size;
    int stopped_busy;    /* the last drain stopped at a record still being written */
    /* Offsets the decoder needs (from BTF). */
    uint32_t off_req_type, off_req_access, off_req_audit_type;
    uint32_t off_net_family, off_net_dport, off_net_sport;
};

/* Opens the observer: reads BTF, builds, loads and attaches the program. 0, or
 * -errno with a sentence in `why` (e.g. EPERM without CAP_BPF/CAP_PERFMON or where
 * the kernel refuses BPF trampolines, ENOENT without BTF or landlock_log_denial).
 * Nothing is left open on failure. `raw_tracepoint` NULL: on landlock_log_denial;
 * else the same program on that raw tracepoint, whose second argument is then read
 * as the request (tests: the ring, the uid filter and the decoder, where fentry is
 * refused). `fake_cwd_request` (tests, with a raw tracepoint): the program's request is
 * a stand-in — read_file denied on the caller's working directory — built in the
 * kernel from the caller's fs_struct, so the path walk meets real objects.
 * `ring_size`: a power of two, at least 64 KiB. `run_cap`: records one uid may put in
 * the ring (past it they are counted lost), so one run's flood cannot crowd out the
 * others'. */
int sbx_ll_observer_open(struct sbx_ll_observer *o, const char *raw_tracepoint, int fake_cwd_request,
                         uint32_t ring_size, uint32_t run_cap, char *why, size_t why_len);
void sbx_ll_observer_close(struct sbx_ll_observer *o);

/* Starts/stops recording denials of processes with this uid. Unwatch returns, via
 * `lost`, how many of this uid's denials are not in the ring: no room, or past the
 * per-run cap. */
int sbx_ll_observer_watch(const struct sbx_ll_observer *o, uint32_t uid);
int sbx_ll_observer_unwatch(const struct sbx_ll_observer *o, uint32_t uid, uint64_t *lost);

/* The program's recursion misses (runs the kernel skipped because the program was
 * already running on that CPU): a run during which it grew may miss denials.
 * UINT64_MAX: could not be read. */
uint64_t sbx_ll_observer_misses(const struct sbx_ll_observer *o);

/* Waits up to timeout_ms for records (poll on the ring). 1 ready, 0 timeout, -errno. */
int sbx_ll_observer_wait(const struct sbx_ll_observer *o, int timeout_ms);

/* Decodes and consumes every record submitted so far, calling `fn` for each (the
 * event is valid during the call only). One consumer at a time. Returns the number
 * of records consumed, or -errno. */
int sbx_ll_observer_drain(struct sbx_ll_observer *o,
                          void (*fn)(const struct sbx_ll_event *event, void *context),
                          void *context);

#endif
