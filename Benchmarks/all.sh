#!/usr/bin/env bash
# Every ratio of issue 16 from ONE invocation on this machine, one binary, each
# measurement beside its peer in the same script run:
#
#   1. cold start: bench/strict/agent `exec -- true`, `plan`, a refused start vs bwrap
#      (startup.sh: min/median/p99/mean, ratios of medians and means)
#   2. the warm path: `/bin/true` under agent through `sandbox serve` vs the same client
#      spawning bwrap, and throughput through serve at 1/4/16/63 client threads
#      (serve.sh once per thread count)
#   3. egress `true` vs the same run without a network vs the shell-out peer
#      (egress.sh, egress-peer.sh)
#   4. CLI throughput at 1/4/16/64 in flight vs bwrap (throughput.sh)
#   5. peak RSS: the supervisor of a cold exec vs bwrap (memory.sh), and how stale
#      Linking/text-order.txt is (order-text.sh --check)
#   6. `plan` time per shipped policy (hyperfine)
#   7. the floor: only the kernel work strict's fences need (floor.sh, floor.c), cold
#      and in one process at 1/4/16 in flight, beside bwrap and `sandbox exec`
#
#   Benchmarks/all.sh                                          # release build first
#   SANDBOX_BIN=/path/to/sandbox QUICK=1 Benchmarks/all.sh     # fewer runs (a smoke run)
#
# It holds /tmp/sandbox-suite.lock throughout (no test suite runs beside it). Run it on
# a quiet machine (no builds either): on a loaded one only the ratios within one
# section mean anything. Docs/benchmarks.md keeps the latest output.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in hyperfine bwrap python3; do command -v "$tool" >/dev/null || { echo "needs $tool"; exit 1; }; done
[ "$(id -u)" = 0 ] || { echo "run as root (agent leases a uid of its own per run)"; exit 1; }
if [ -z "${SANDBOX_BIN:-}" ]; then Scripts/build-release.sh >/dev/null; fi
export SANDBOX_BIN="${SANDBOX_BIN:-$PWD/.build/release/sandbox}"
export NO_BUILD=1
exec 9>/tmp/sandbox-suite.lock
flock 9
export SANDBOX_BENCH_LOCKED=1 # egress.sh would take the lock again and wait for itself
if [ -n "${QUICK:-}" ]; then n=30; tp=64; else n=200; tp=256; fi

section() { printf '\n== %s\n' "$*"; }

echo "sandbox $("$SANDBOX_BIN" --version 2>/dev/null || echo '?'), $(nproc) cores, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"

section "1. cold start (exec -- true), ms"
RUNS=$n Benchmarks/startup.sh

section "2. warm path: sandbox serve vs the same client spawning bwrap"
# 63, not 64: the server takes at most 64 connections (Docs/serve.md) and the
# latency rows keep one open while the throughput threads connect.
for threads in 1 4 16 63; do
    echo "-- $threads client thread(s)"
    RUNS=$((n / 2)) THROUGHPUT_RUNS=$((tp * 2)) THREADS=$threads Benchmarks/serve.sh
done

section "3. egress true vs no network vs the shell-out set-up script"
RUNS=$((n / 2)) Benchmarks/egress.sh

section "4. CLI throughput (runs/s)"
TOTAL=$tp Benchmarks/throughput.sh

section "5. peak RSS"
Benchmarks/memory.sh
# How much of a cold run's text lies outside the first-call order (Linking/): a
# growing count says Linking/text-order.txt wants regenerating.
# (`|| true`: head closing the pipe is not a failure of the benchmark.)
{ Linking/order-text.sh --check 2>/dev/null || true; } | head -1 || true

section "6. plan time per shipped policy (ms)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/cwd"
args=()
for p in $(ls Policies | sed 's/\.toml$//'); do
    (cd "$work/cwd" && "$SANDBOX_BIN" plan --policy "$p" -- true >/dev/null 2>&1) || continue # not plannable here (rootless-only, …)
    args+=(-n "$p" "$SANDBOX_BIN plan --policy $p -- true")
done
(cd "$work/cwd" && hyperfine -N --warmup 5 --runs "$n" --export-json "$work/plan.json" "${args[@]}" >/dev/null 2>&1)
python3 - "$work/plan.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    t = sorted(r["times"])
    pick = lambda q: t[min(len(t) - 1, int(q * len(t)))] * 1e3
    print(f"{r['command']:16} min {pick(0):6.2f}  median {pick(0.5):6.2f}  p99 {pick(0.99):6.2f}")
PY

section "7. the floor: the kernel work of strict's fences alone (floor.c) vs bwrap"
RUNS=$n TOTAL=$((tp * 2)) Benchmarks/floor.sh
