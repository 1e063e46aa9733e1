/*
 * The spawner: a small process a server starts before its first run (a fresh exec
 * of its own binary), which clones every sandbox init for it.
 *
 * Why: a sandbox init is a copy of the process that clones it. Cloned from a
 * multi-threaded server, every init copies the server's page tables and then shares
 * its pages copy-on-write while the server's threads write theirs: page faults on
 * both sides and a TLB shootdown on every CPU the server runs on (a quarter of all
 * CPU under 16-way load, Docs/benchmarks.md). The spawner is the same binary
 * executed afresh (`--sandbox-spawner-fd`): single-threaded, small, and holding
 * nothing of the server's memory, so nothing of any client, whenever it is started
 * (a spawner that died is started again by the server's main thread, and runs in
 * between are cloned by the server). It clones the init with CLONE_PARENT, so the init is the server's child
 * as before (the server waits for it, signals it and reads its exit through the
 * pidfd the spawner sends back); only the image it is copied from changes.
 *
 * The spec travels flattened (pointers as offsets into one buffer) over a unix
 * stream socket, its descriptors with SCM_RIGHTS, each with its close-on-exec flag.
 * A spec that does not fit (more descriptors than one message carries, a body over
 * 8 MiB) is cloned in the server, as before: the same sandbox either way.
 */
#ifndef SANDBOX_SPAWNER_H
#define SANDBOX_SPAWNER_H

#include <stdint.h>
#include <sys/types.h>

struct sbx_spec;

/* Start the spawner: fork, then execveat this binary (opened once, at the first
 * start) as `sandbox-spawner --sandbox-spawner-fd 3 <server pid>`, with an empty
 * environment and the socket as descriptor 3; 0 once it says it is ready, or -errno.
 * Call from the thread that lives as long as every run: the spawner's and the
 * inits' PDEATHSIG follow that thread. */
int sbx_spawner_start(void);
/* The spawner's pidfd (readable once it has exited), or -1 without one. */
int sbx_spawner_pidfd(void);
/* From the same thread as sbx_spawner_start: a spawner that has exited (or none) is
 * replaced by a new one. 0, -EALREADY while the current one lives, or -errno. */
int sbx_spawner_restart(void);
/* First thing in main: with `--sandbox-spawner-fd N PID` this process is a spawner
 * and never returns; otherwise it returns at once. */
void sbx_spawner_main_if_asked(int argc, char **argv);
/* Close the spawner's socket and wait for it to exit; later spawns are local. */
void sbx_spawner_stop(void);

/* sbx_spawn's first step: 1 when the spawner took the spec (*pid_out: the pid, or
 * -errno), 0 when it must be cloned here (no spawner, or a spec that does not fit). */
int sbx_spawner_spawn(const struct sbx_spec *spec, int *pidfd_out, pid_t *pid_out);

/* Tests: flatten `spec` as sbx_spawner_spawn would, then read it back as the spawner
 * does, and call `check` with the copy it would clone with (descriptors as the
 * indexes they travel as: 0 is the working directory). 0, or -errno when it does not
 * fit (-E2BIG, -EMFILE) or does not read back (-EPROTO). */
int sbx_spawner_roundtrip(const struct sbx_spec *spec, void (*check)(const struct sbx_spec *copy, void *ctx), void *ctx);

#endif
