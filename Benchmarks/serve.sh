#!/usr/bin/env bash
# The warm path against bubblewrap, from ONE client in ONE run (issue 16, acceptance 2):
#
#   - latency: `/bin/true` under `agent` through `sandbox serve` (a request on an open
#     connection, stdio passed as descriptors) vs the same client spawning bwrap (and,
#     for reference, spawning `sandbox exec` and `sandbox exec --server`): min, median,
#     p99, and the ratio of medians;
#   - throughput: 16 threads of that client, each with its own connection (serve) or
#     spawning its own bwrap, runs per second and the ratio.
#
#   Benchmarks/serve.sh              # release build; RUNS=400 per latency row, 1600 per throughput row
#   SERVE_ARGS="--built-ahead 0" Benchmarks/serve.sh   # the server without sandboxes built ahead
#
# Take /tmp/sandbox-suite.lock around it on a shared machine. The client is
# Benchmarks/serve_client.py; the bwrap line is Benchmarks/startup.sh's.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v bwrap >/dev/null || { echo "needs bubblewrap (apt-get install bubblewrap)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "run as root (agent leases a uid of its own per run)"; exit 1; }
# SANDBOX_BIN: a release binary built elsewhere (then nothing is built here).
if [ -z "${SANDBOX_BIN:-}" ]; then Scripts/build-release.sh >/dev/null; fi
bin="${SANDBOX_BIN:-$PWD/.build/release/sandbox}"
client="$PWD/Benchmarks/serve_client.py"
work=$(mktemp -d)
mkdir "$work/sock" && chmod 700 "$work/sock"
mkdir "$work/cwd"
# shellcheck disable=SC2086
"$bin" serve --socket "$work/sock/s" ${SERVE_ARGS:-} 2>"$work/serve.log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do [ -S "$work/sock/s" ] && break; sleep 0.05; done
[ -S "$work/sock/s" ] || { echo "sandbox serve did not start: $(cat "$work/serve.log")"; exit 1; }
cd "$work/cwd"
"$bin" exec --policy agent -- true   # warm the seccomp cache, as the server's first run would

python3 "$client" --socket "$work/sock/s" --bin "$bin" --server-pid "$server" \
    --runs "${RUNS:-400}" --throughput-runs "${THROUGHPUT_RUNS:-1600}" --threads "${THREADS:-16}"
