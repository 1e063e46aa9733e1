/*
 * The spawner: a small process a server forks from itself before its first run,
 * which clones every sandbox init for it.
 *
 * Why: a sandbox init is a copy of the process that clones it. Cloned from a
 * multi-threaded server, every init copies the server's page tables and then shares
 * its pages copy-on-write while the server's threads write theirs: page faults on
 * both sides and a TLB shootdown on every CPU the server runs on (a quarter of all
 * CPU under 16-way load, Docs/benchmarks.md). The spawner is a copy of the server
 * taken before any request: single-threaded, small, and holding nothing of any
 * client. It clones the init with CLONE_PARENT, so the init is the server's child
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

/* Fork the spawner. Call once, from the thread that lives as long as every run
 * (the inits' PDEATHSIG follows that thread), before any other thread exists.
 * 0 or -errno. */
int sbx_spawner_start(void);
/* Close the spawner's socket and wait for it to exit; later spawns are local. */
void sbx_spawner_stop(void);

/* 1 while the spawner takes requests (it has not been stopped or ended). */
int sbx_spawner_running(void);

/* sbx_spawn's first step: 1 when the spawner took the spec (*pid_out: the pid, or
 * -errno), 0 when it must be cloned here (no spawner, or a spec that does not fit). */
int sbx_spawner_spawn(const struct sbx_spec *spec, int *pidfd_out, pid_t *pid_out);

/* Tests: flatten `spec` as sbx_spawner_spawn would, then read it back as the spawner
 * does, and call `check` with the copy it would clone with (descriptors as the
 * indexes they travel as: 0 is the working directory). 0, or -errno when it does not
 * fit (-E2BIG, -EMFILE) or does not read back (-EPROTO). */
int sbx_spawner_roundtrip(const struct sbx_spec *spec, void (*check)(const struct sbx_spec *copy, void *ctx), void *ctx);

/* ---- The command of a sandbox built ahead (sbx_spec.command_fd). ---- */

/* Sends the command fields of `command` (argv, envp, search_path, exec_fd,
 * exec_argv, the exec and script stamps, exec_leased, exec_view, script_fd,
 * stdio_fds; every other field is ignored) as one message on `sock`, the
 * descriptors with SCM_RIGHTS. The supervisor's side: it may allocate. 0 or -errno
 * (-E2BIG, -EMFILE: it does not fit). */
int sbx_command_send(int sock, const struct sbx_spec *command);

/* The init's side (async-signal-safe: no allocation but one anonymous mapping for
 * the body, which lives as long as the process): receives one command message and
 * writes its command fields into `into`, whose other fields stay as they are. The
 * descriptors arrive close-on-exec but the stdio ones, which the init installs.
 * 0, -EPIPE at EOF, or -errno (-EPROTO: a message out of shape). */
int sbx_command_receive(int sock, struct sbx_spec *into);

#endif
