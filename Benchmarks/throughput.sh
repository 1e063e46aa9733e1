#!/usr/bin/env bash
# Runs per second of `true` with 1, 4, 16 and 64 runs in flight, sandbox beside
# bubblewrap (issue 16's throughput table). Each level runs TOTAL commands through
# xargs -P; sandbox and bwrap alternate level by level so both see the same load.
#
#   Benchmarks/throughput.sh                 # release build, policy bench.toml
#   POLICY=agent TOTAL=400 NO_BUILD=1 Benchmarks/throughput.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=rate.sh
source "$PWD/Benchmarks/rate.sh"
command -v bwrap >/dev/null || { echo "needs bubblewrap (apt-get install bubblewrap)"; exit 1; }
[ -n "${NO_BUILD:-}" ] || Scripts/build-release.sh >/dev/null
bin="${SANDBOX_BIN:-$PWD/.build/release/sandbox}"
policy="${POLICY:-$PWD/Benchmarks/bench.toml}"
total="${TOTAL:-256}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$bin" exec --policy "$policy" -- true   # the seccomp cache

sandbox_cmd=("$bin" exec --policy "$policy" -- true)
bwrap_cmd=(bwrap --unshare-all --die-with-parent --new-session --ro-bind /usr /usr
    --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/sbin /sbin
    --proc /proc --dev /dev --tmpfs /tmp --cap-drop ALL true)


printf "%-9s %10s %10s %8s\n" parallel sandbox bwrap ratio
for n in 1 4 16 64; do
    s=$(rate "$n" "${sandbox_cmd[@]}")
    b=$(rate "$n" "${bwrap_cmd[@]}")
    printf "%-9s %10s %10s %8s\n" "$n" "$s" "$b" "$(python3 -c "print(f'{$s / $b:.2f}')")"
done
echo "(runs/s of $total runs of true; policy $(basename "$policy"))"
