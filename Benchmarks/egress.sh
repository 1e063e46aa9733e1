#!/usr/bin/env bash
# What an egress run costs (issue 16, acceptance 3), in one hyperfine run so all
# lines see the same machine state: sandbox egress `true` (bench-egress.toml),
# sandbox `true` without a network (bench.toml), and the shell-out peer
# (egress-peer.sh: netns + veth + addresses + nft + teardown with ip/nft). Prints
# min/median/p99 of each and the ratios; then the same two runs through `sandbox
# serve` beside the peer spawned by the same client (serve_egress.py). Root only; takes the suite lock (it uses
# the shared bridge sbx0).
#
#   Benchmarks/egress.sh                 # release build, 100 runs each
#   RUNS=50 NO_BUILD=1 Benchmarks/egress.sh
#   BEFORE=/path/to/older/sandbox Benchmarks/egress.sh   # adds an older build's egress run
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "egress runs need root"; exit 1; }
[ -n "${NO_BUILD:-}" ] || Scripts/build-release.sh >/dev/null
bin="${SANDBOX_BIN:-$PWD/.build/release/sandbox}"
# Policies and profiles from this checkout for every binary (BEFORE may live elsewhere).
export SANDBOX_DATA_DIR="$PWD"
bench="$PWD/Benchmarks"
runs="${RUNS:-100}"
work=$(mktemp -d)
trap 'cd /; rm -rf "$work"; "$bench/egress-peer.sh" --remove' EXIT
cd "$work"
# Everything from here under the suite lock: the runs use the shared bridge sbx0, and
# the peer makes a network namespace (/run/netns) the suites would see.
if [ -z "${SANDBOX_BENCH_LOCKED:-}" ]; then exec 9>/tmp/sandbox-suite.lock; flock 9; fi
"$bin" exec --policy "$bench/bench-egress.toml" -- true   # the bridge, host table, seccomp cache
"$bench/egress-peer.sh"                                   # the peer's bridge

args=(-n "sandbox egress" "$bin exec --policy $bench/bench-egress.toml -- true"
      -n "sandbox none" "$bin exec --policy $bench/bench.toml -- true"
      -n "shell-out peer" "$bench/egress-peer.sh")
[ -z "${BEFORE:-}" ] || args+=(-n "before: egress" "$BEFORE exec --policy $bench/bench-egress.toml -- true")
hyperfine -N --warmup 10 --runs "$runs" --export-json "$work/egress.json" "${args[@]}" >/dev/null

python3 - "$work/egress.json" <<'PY'
import json, sys
r = {x["command"]: sorted(x["times"]) for x in json.load(open(sys.argv[1]))["results"]}
def q(t, p): return t[min(len(t) - 1, int(p * len(t)))] * 1e3
med = {k: q(t, 0.5) for k, t in r.items()}
print(f"| | min | median | p99 | median ÷ peer |")
print(f"|---|---|---|---|---|")
for k, t in r.items():
    print(f"| {k} | {t[0]*1e3:.1f} ms | {med[k]:.1f} ms | {q(t, 0.99):.1f} ms | {med[k] / med['shell-out peer']:.2f}× |")
print(f"\nwhat egress adds (median): {med['sandbox egress'] - med['sandbox none']:.1f} ms")
PY

# The warm path: the same runs through `sandbox serve`, beside the peer spawned by the
# same client (Benchmarks/serve_egress.py), interleaved.
mkdir -m 700 "$work/sock"
"$bin" serve --socket "$work/sock/s" 2>"$work/serve.log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; cd /; rm -rf "$work"; "$bench/egress-peer.sh" --remove' EXIT
for _ in $(seq 100); do [ -S "$work/sock/s" ] && break; sleep 0.05; done
[ -S "$work/sock/s" ] || { echo "sandbox serve did not start: $(cat "$work/serve.log")"; exit 1; }
echo
python3 "$bench/serve_egress.py" --socket "$work/sock/s" --egress-policy "$bench/bench-egress.toml" \
    --none-policy "$bench/bench.toml" --peer "$bench/egress-peer.sh" --runs "$runs"
