#!/usr/bin/env bash
# Cost of the search for unix sockets under ro binds (SandboxPlan/SocketScan.swift)
# for `agent`: the same run with the search and with nothing to search (every ro
# tree of base vouched for in socket_scan_skip), side by side with bubblewrap, in one
# hyperfine run. `sandbox plan` is timed too: planning alone, where the difference
# is not hidden in the run's noise. Reports the differences.
#
#   Benchmarks/socketscan.sh          # release build, 300 runs each
#   SCRATCH=.build-sock RUNS=500 Benchmarks/socketscan.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)"; exit 1; }
command -v bwrap >/dev/null || { echo "needs bubblewrap (apt-get install bubblewrap)"; exit 1; }
scratch="${SCRATCH:-.build}"
Scripts/build-release.sh --scratch-path "$scratch" >/dev/null
bin="$PWD/$scratch/release/sandbox"
runs="${RUNS:-300}"
policies=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$work" "$policies"' EXIT
# base.toml's searched ro trees are all under /etc; vouching for /etc leaves nothing
# to search (no directory is read, nor the mount table). Both sides are one file
# extending agent.toml with one key, so they cost the same to load.
for side in scan:/nonexistent-socket-scan-bench noscan:/etc; do
    cat > "$policies/agent-${side%%:*}.toml" <<TOML
name = "agent-${side%%:*}"
extends = ["$PWD/Policies/agent.toml"]
[filesystem]
socket_scan_skip = ["${side#*:}"]
TOML
done
agent="$policies/agent-scan.toml"
noscan="$policies/agent-noscan.toml"
cd "$work"
"$bin" exec --policy "$agent" -- true     # warm the seccomp cache
"$bin" exec --policy "$noscan" -- true

bwrap_cmd="bwrap --unshare-all --die-with-parent --new-session --ro-bind /usr /usr \
--symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/sbin /sbin \
--proc /proc --dev /dev --tmpfs /tmp --bind $work $work --chdir $work --cap-drop ALL true"

hyperfine -N --warmup 20 --runs "$runs" --export-json "$work/socketscan.json" \
    -n agent "$bin exec --policy $agent -- true" \
    -n agent-noscan "$bin exec --policy $noscan -- true" \
    -n bwrap "$bwrap_cmd" \
    -n plan "$bin plan --policy $agent -- true" \
    -n plan-noscan "$bin plan --policy $noscan -- true"

# hyperfine runs each command's batch in turn, so load that drifts between batches
# biases a difference of ~0.5 ms; the paired runs below alternate the two policies
# (plan only: planning is where the search runs) and report the paired difference.
python3 - "$bin" "$agent" "$noscan" "$runs" <<'PY'
import statistics, subprocess, sys, time
bin, agent, noscan, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def once(policy):
    t = time.perf_counter()
    subprocess.run([bin, "plan", "--policy", policy, "--", "true"], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t
d = []
for i in range(runs):
    pair = [(agent, 1), (noscan, -1)] if i % 2 == 0 else [(noscan, -1), (agent, 1)]
    d.append(sum(sign * once(p) for p, sign in pair) * 1e3)
se = statistics.stdev(d) / len(d) ** 0.5
print(f"search cost, paired plan runs: mean {statistics.mean(d):+.2f} ms (±{2 * se:.2f}), median {statistics.median(d):+.2f} ms, {runs} pairs")
PY

python3 - "$work/socketscan.json" <<'PY'
import json, math, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
def diff(a, b):
    d = (r[a]["mean"] - r[b]["mean"]) * 1e3
    se = math.sqrt(sum((r[x]["stddev"] or 0) ** 2 / len(r[x]["times"]) for x in (a, b))) * 1e3
    return f"{d:+.2f} ms (±{2 * se:.2f})"
for k in ("agent", "agent-noscan", "bwrap", "plan", "plan-noscan"):
    print(f"{k:13} {r[k]['mean'] * 1e3:7.2f} ms  (median {r[k]['median'] * 1e3:.2f})")
print("search cost, exec:", diff("agent", "agent-noscan"), "  plan:", diff("plan", "plan-noscan"))
print(f"ratio agent/bwrap = {r['agent']['mean'] / r['bwrap']['mean']:.2f}")
PY
