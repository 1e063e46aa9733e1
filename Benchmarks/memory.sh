#!/usr/bin/env bash
# Peak resident memory of one sandboxed `true`, sandbox beside bubblewrap (same
# policy shape as startup.sh), and what the supervisor's resident memory is made of.
#
#   Benchmarks/memory.sh             # release build
#   NO_BUILD=1 Benchmarks/memory.sh
#
# Peak: GNU time's %M (ru_maxrss of the waited-for command: the largest process of
# its tree, for sandbox the supervisor), the largest of 20 runs. GNU time forks
# itself, a small process, before the exec; a Python parent would count its own
# size in the child's peak (what this script measured before: bwrap's 13.9 MiB was
# Python's).
# Composition: RssAnon (the run's own: heap, stacks, relocated data) and RssFile
# (pages of the binary and libraries mapped from the page cache — shared with every
# other process mapping them; the kernel maps up to 16 pages around each fault) of
# the supervisor while the command sleeps.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v bwrap >/dev/null || { echo "needs bubblewrap (apt-get install bubblewrap)"; exit 1; }
[ -x /usr/bin/time ] || { echo "needs GNU time (apt-get install time)"; exit 1; }
[ -n "${NO_BUILD:-}" ] || Scripts/build-release.sh >/dev/null
bin="${SANDBOX_BIN:-$PWD/.build/release/sandbox}"
policy="$PWD/Benchmarks/bench.toml"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

peak() {
    local best=0 kib
    for _ in $(seq 20); do
        /usr/bin/time -o "$work/rss" -f "%M" "$@" >/dev/null 2>&1
        kib=$(tail -1 "$work/rss")
        [ "$kib" -gt "$best" ] && best=$kib
    done
    echo "$best"
}

sbx=$(peak "$bin" exec --policy "$policy" -- true)
strict=$(peak "$bin" exec --policy strict -- true)
bw=$(peak bwrap --unshare-all --die-with-parent --new-session --ro-bind /usr /usr \
    --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/sbin /sbin \
    --proc /proc --dev /dev --tmpfs /tmp --cap-drop ALL true)
echo "peak RSS: sandbox (bench) $sbx KiB, sandbox (strict) $strict KiB, bwrap $bw KiB, ratio bench/bwrap = $(python3 -c "print(f'{$sbx / $bw:.2f}')")"

"$bin" exec --policy "$policy" -- sleep 1 &
supervisor=$!
sleep 0.5
grep -E "^(VmHWM|RssAnon|RssFile)" "/proc/$supervisor/status" | tr -s ' \t' ' ' | paste -sd ',' | sed 's/^/supervisor while the command runs: /'
wait "$supervisor"
