#!/usr/bin/env bash
# The floor under issue 16's ratios: Benchmarks/floor.c makes only the kernel calls
# the shipped `strict` policy asks for (no plan, no run record, no audit), with
# strict's own seccomp filter, so what it costs is about what any implementation of
# the same fences, built the same way, pays on this host. Beside bwrap (the command
# line of throughput.sh and all.sh), beside itself with each fence left out, and
# beside `sandbox exec`:
#   - cold: ROUNDS hyperfine runs of RUNS/ROUNDS each, the commands in a new random
#     order each round (one hyperfine block per command would put the host's drift,
#     and the deferred cleanup of the runs before, on whichever command comes later);
#   - runs/s with 1/4/16 in flight, three rounds in a random order, medians: floor
#     in one process (what a server that spawns nothing per run could reach at best;
#     the serve benchmark's client does not spawn either), floor and bwrap spawned
#     by xargs (what a CLI could reach).
#
#   sudo Benchmarks/floor.sh                     # RUNS=300 TOTAL=512 ROUNDS=20
#   SANDBOX_BIN=.build/release/sandbox sudo -E Benchmarks/floor.sh
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in cc hyperfine bwrap python3; do command -v "$tool" >/dev/null || { echo "needs $tool"; exit 1; }; done
[ "$(id -u)" = 0 ] || { echo "needs root (cgroups, a uid of the run's own)"; exit 1; }
runs="${RUNS:-300}"
total="${TOTAL:-512}"
rounds="${ROUNDS:-20}"
src="$PWD/Benchmarks/floor.c"
bin="${SANDBOX_BIN:-$PWD/.build/release/sandbox}"
[ -x "$bin" ] && bin=$(realpath "$bin") || bin=""
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -Wall -Wno-format-truncation -o "$work/floor" "$src"
# shellcheck source=rate.sh
source "$PWD/Benchmarks/rate.sh"
mkdir "$work/cwd"
cd "$work/cwd"        # strict binds the working directory; /tmp itself it refuses

# strict's seccomp program, as `sandbox` compiled and cached it (SBXBPF1: magic, three
# length-prefixed blocks, then the struct sock_filter array).
filter=(-b 455)
if [ -n "$bin" ]; then
    "$bin" exec --policy strict -- /bin/true   # the seccomp cache
    digest=$("$bin" plan --policy strict -- /bin/true | python3 -c 'import json, sys; print(json.load(sys.stdin)["seccomp"]["rulesDigest"])')
    python3 - "$digest" "$work/strict.bpf" <<'EOF'
import glob, sys
paths = glob.glob(f"/run/sandbox/.seccomp-cache/{sys.argv[1]}-*.bpf")
data = open(paths[0], "rb").read()
assert data[:8] == b"SBXBPF1\n"
off = 8
for _ in range(3):
    off += 4 + int.from_bytes(data[off:off + 4], "little")
open(sys.argv[2], "wb").write(data[off:])
EOF
    filter=(-f "$work/strict.bpf")
    echo "seccomp: strict's own filter, $(( $(stat -c %s "$work/strict.bpf") / 8 )) instructions"
else
    echo "seccomp: no sandbox binary (SANDBOX_BIN), a synthetic filter of 455 instructions"
fi

bwrap_cmd="bwrap --unshare-all --die-with-parent --new-session --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/sbin /sbin --proc /proc --dev /dev --tmpfs /tmp --cap-drop ALL true"
floor_cmd="$work/floor ${filter[*]}"
names=(bwrap floor)
cmds=("$bwrap_cmd" "$floor_cmd -- /bin/true")
for step in cgroups proc-masks landlock seccomp netns; do
    names+=("floor without $step")
    cmds+=("$floor_cmd -x $step -- /bin/true")
done
names+=("floor without all five")
cmds+=("$floor_cmd -x cgroups,proc-masks,landlock,seccomp,netns -- /bin/true")
if [ -n "$bin" ]; then
    names+=("sandbox exec strict")
    cmds+=("$bin exec --policy strict -- /bin/true")
fi
per_round=$(( (runs + rounds - 1) / rounds ))
for r in $(seq "$rounds"); do
    args=()
    for i in $(python3 -c "import random; x = list(range(${#names[@]})); random.shuffle(x); print(*x)"); do
        args+=(-n "${names[$i]}" "${cmds[$i]}")
    done
    hyperfine -N -w 2 -r "$per_round" --export-json "$work/cold$r.json" "${args[@]}" >/dev/null 2>&1
done

echo "== cold: exec -- /bin/true, ms ($rounds rounds in random order, $((per_round * rounds)) runs each)"
python3 - "$work"/cold*.json <<'EOF'
import json, statistics, sys
times = {}
for path in sys.argv[1:]:
    for r in json.load(open(path))["results"]:
        times.setdefault(r["command"], []).extend(x * 1000 for x in r["times"])
def q(xs, p):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(p * len(xs)))]
base = statistics.median(times["bwrap"])
print(f"{'command':28} {'min':>7} {'median':>7} {'p99':>7}  median/bwrap")
order = ["bwrap", "floor"] + sorted(k for k in times if k.startswith("floor ")) + [k for k in times if k.startswith("sandbox")]
for name in order:
    t = times[name]
    print(f"{name:28} {min(t):7.2f} {statistics.median(t):7.2f} {q(t, .99):7.2f}  {statistics.median(t) / base:6.2f}")
EOF

echo
echo "== runs/s of $total runs of true (three rounds in random order, medians)"
printf "%-9s %14s %14s %10s %18s %18s\n" parallel "floor, 1 proc" "floor, xargs" "bwrap" "1 proc / bwrap" "xargs / bwrap"
for n in 1 4 16; do
    declare -A got=([inproc]="" [spawned]="" [bwrap]="")
    for round in 1 2 3; do
        for kind in $(python3 -c "import random; x = ['inproc', 'spawned', 'bwrap']; random.shuffle(x); print(*x)"); do
            case $kind in
                # shellcheck disable=SC2086
                inproc) v=$("$work/floor" "${filter[@]}" -n "$total" -p "$n" -- /bin/true) ;;
                # shellcheck disable=SC2086
                spawned) v=$(rate "$n" $floor_cmd -- /bin/true) ;;
                # shellcheck disable=SC2086
                bwrap) v=$(rate "$n" $bwrap_cmd) ;;
            esac
            got[$kind]="${got[$kind]} $v"
        done
    done
    python3 - "$n" "${got[inproc]}" "${got[spawned]}" "${got[bwrap]}" <<'EOF'
import statistics, sys
n, i, s, b = sys.argv[1], *[statistics.median(map(float, a.split())) for a in sys.argv[2:]]
print(f"{n:9} {i:14.0f} {s:14.0f} {b:10.0f} {i / b:18.2f} {s / b:18.2f}")
EOF
done
echo "(kernel $(uname -r), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
