#!/usr/bin/env bash
# The floor under issue 16's ratios: Benchmarks/floor.c makes only the kernel calls
# the shipped `strict` policy asks for (no plan, no run record, no audit), so what it
# costs is what any implementation of the same fences pays on this host. One
# hyperfine run puts it beside bwrap (the same command line as throughput.sh and
# all.sh), beside itself with each fence left out, and beside `sandbox exec`; then
# runs/s with 1/4/16 in flight: floor in one process (what a server that forks
# nothing per run could reach at best) against bwrap spawned by xargs.
#
#   sudo Benchmarks/floor.sh                   # RUNS=300 TOTAL=512
#   SANDBOX_BIN=.build/release/sandbox sudo -E Benchmarks/floor.sh
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in cc hyperfine bwrap python3; do command -v "$tool" >/dev/null || { echo "needs $tool"; exit 1; }; done
[ "$(id -u)" = 0 ] || { echo "needs root (cgroups, a uid of the run's own)"; exit 1; }
runs="${RUNS:-300}"
total="${TOTAL:-512}"
src="$PWD/Benchmarks/floor.c"
bin="${SANDBOX_BIN:-}"
[ -z "$bin" ] || bin=$(realpath "$bin")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -Wall -Wno-format-truncation -o "$work/floor" "$src"
mkdir "$work/cwd"
cd "$work/cwd"        # strict binds the working directory; /tmp itself it refuses

bwrap_cmd="bwrap --unshare-all --die-with-parent --new-session --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/sbin /sbin --proc /proc --dev /dev --tmpfs /tmp --cap-drop ALL true"
names=(bwrap floor)
cmds=("$bwrap_cmd" "$work/floor -- /bin/true")
for step in cgroups proc-masks landlock seccomp netns; do
    names+=("floor without $step")
    cmds+=("$work/floor -x $step -- /bin/true")
done
names+=("floor without all five")
cmds+=("$work/floor -x cgroups,proc-masks,landlock,seccomp,netns -- /bin/true")
if [ -n "$bin" ]; then
    "$bin" exec --policy strict -- /bin/true   # the seccomp cache
    names+=("sandbox exec strict")
    cmds+=("$bin exec --policy strict -- /bin/true")
fi
args=()
for i in "${!names[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
# Five rounds of one hyperfine run each, so a drift of the host's load falls on
# every command alike (one hyperfine run times each command's runs in one block).
rounds=5
for r in $(seq $rounds); do
    hyperfine -N -w 5 -r $(( (runs + rounds - 1) / rounds )) --export-json "$work/cold$r.json" "${args[@]}" >/dev/null 2>&1
done

echo "== cold: exec -- /bin/true, ms ($rounds hyperfine rounds, $runs runs each in all)"
python3 - "$work"/cold*.json <<'EOF'
import json, statistics, sys
results = json.load(open(sys.argv[1]))["results"]
for path in sys.argv[2:]:
    for r, more in zip(results, json.load(open(path))["results"]):
        r["times"] += more["times"]
def q(xs, p):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(p * len(xs)))]
base = statistics.median(results[0]["times"])
print(f"{'command':28} {'min':>7} {'median':>7} {'p99':>7}  median/bwrap")
for r in results:
    t = [x * 1000 for x in r["times"]]
    print(f"{r['command']:28} {min(t):7.2f} {statistics.median(t):7.2f} {q(t, .99):7.2f}  {statistics.median(r['times']) / base:6.2f}")
EOF

echo
echo "== runs/s of $total runs of true: floor in one process (-p N), bwrap spawned by xargs -P N"
printf "%-9s %10s %10s %8s\n" parallel floor bwrap ratio
rate_bwrap() {
    local start end
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    seq "$total" | xargs -P "$1" -I{} $bwrap_cmd >/dev/null
    end=$(date +%s.%N)
    python3 -c "print(f'{$total / ($end - $start):.0f}')"
}
for n in 1 4 16; do
    f=$("$work/floor" -n "$total" -p "$n" -- /bin/true)
    b=$(rate_bwrap "$n")
    printf "%-9s %10s %10s %8s\n" "$n" "$f" "$b" "$(python3 -c "print(f'{$f / $b:.2f}')")"
done
echo "(kernel $(uname -r), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
