#!/usr/bin/env bash
# Start-up cost of one sandboxed `true`, side by side with bubblewrap, in one
# hyperfine run so every command sees the same machine state. Prints each command's
# min / median / p99 / mean and its ratio to bwrap (issue 16, acceptance 1).
#
#   Benchmarks/startup.sh            # release build, 200 runs each
#   RUNS=100 NO_BUILD=1 Benchmarks/startup.sh
#
# Commands (all from a fresh empty directory as the cwd):
#   bench     Benchmarks/bench.toml (= base): a private root with /usr and friends
#             read-only, a tmpfs /tmp, new pid/mount/ipc/uts/net/cgroup namespaces,
#             Landlock, the default seccomp profile (cached BPF), no capabilities —
#             more than the bwrap line, which is bwrap's closest equivalent
#   strict    the shipped strict policy (base + a cgroup with memory/pids/cpu limits,
#             uid nobody, read-only cwd)
#   agent     the shipped agent policy (writable cwd, limits, the socket search)
#   plan      `sandbox plan --policy agent -- true` (load, compile, digest; no run)
#   start     `sandbox exec --policy /nonexistent -- true`: process start and a
#             refused run (runtime, loader, the error result)
#   bwrap     --unshare-all, a private /usr root, proc, dev, tmpfs /tmp, no caps
#   true      the bare command
# On a busy machine compare the ratios, never absolute times across runs.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)"; exit 1; }
command -v bwrap >/dev/null || { echo "needs bubblewrap (apt-get install bubblewrap)"; exit 1; }
[ -n "${NO_BUILD:-}" ] || Scripts/build-release.sh >/dev/null
bin="${SANDBOX_BIN:-$PWD/.build/release/sandbox}"
runs="${RUNS:-200}"
repo="$PWD"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/cwd"
cd "$work/cwd"
# Warm the seccomp filter cache for each policy (a first run compiles the BPF), and
# check that every command but `start` succeeds: hyperfine runs with -i for `start`,
# whose refusal (exit 125) is the point.
for p in "$repo/Benchmarks/bench.toml" strict agent; do "$bin" exec --policy "$p" -- true; done
"$bin" plan --policy agent -- true >/dev/null

bwrap_cmd="bwrap --unshare-all --die-with-parent --new-session --ro-bind /usr /usr \
--symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/sbin /sbin \
--proc /proc --dev /dev --tmpfs /tmp --cap-drop ALL true"

hyperfine -N -i --warmup 20 --runs "$runs" --export-json "$work/startup.json" \
    -n bench "$bin exec --policy $repo/Benchmarks/bench.toml -- true" \
    -n strict "$bin exec --policy strict -- true" \
    -n agent "$bin exec --policy agent -- true" \
    -n plan "$bin plan --policy agent -- true" \
    -n start "$bin exec --policy /nonexistent -- true" \
    -n bwrap "$bwrap_cmd" \
    -n true "true" >/dev/null 2>"$work/hyperfine.err" || { cat "$work/hyperfine.err"; exit 1; }

python3 - "$work/startup.json" <<'PY'
import json, sys
results = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
def stats(name):
    t = sorted(results[name]["times"])
    pick = lambda q: t[min(len(t) - 1, int(q * len(t)))] * 1e3
    return pick(0), pick(0.5), pick(0.99), results[name]["mean"] * 1e3
_, bwrap_median, _, bwrap_mean = stats("bwrap")
print(f"{'command':8} {'min':>8} {'median':>8} {'p99':>8} {'mean':>8}   median/bwrap  mean/bwrap")
for name in ["bench", "strict", "agent", "plan", "start", "bwrap", "true"]:
    lo, med, p99, mean = stats(name)
    print(f"{name:8} {lo:8.2f} {med:8.2f} {p99:8.2f} {mean:8.2f}   {med / bwrap_median:12.2f} {mean / bwrap_mean:11.2f}")
print("(ms; one hyperfine run, every command beside bwrap)")
PY
