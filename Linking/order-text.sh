#!/usr/bin/env bash
# Regenerates Linking/text-order.txt, the order gold lays out the functions of the
# release binary in (Package.swift, --section-ordering-file): the functions a cold
# run calls, in the order they are first called, so that they sit on as few pages
# as possible. The kernel maps a binary's text 64 KiB around each fault; spread over
# 13 MiB of text, the ~2 300 functions a run calls kept 7.6 MiB of it resident and
# cost a fault for each window (Docs/benchmarks.md, session 35).
#
#   Linking/order-text.sh              # after Scripts/build-release.sh
#   SANDBOX_BIN=/path/to/sandbox Linking/order-text.sh
#   Linking/order-text.sh --check      # how stale the list is; changes nothing
#
# Measure a regenerated list (Benchmarks/memory.sh) before committing it: the
# layout's fit to 64 KiB windows moves the resident set by a few hundred KiB either
# way, and one list traced from a binary already laid out by the previous one came
# out 0.25 MiB worse than it.
#
# Needs root (the runs are sandboxed for real), a C compiler, nm and python3. The
# traced runs: exec under strict, agent, an egress policy and the benchmarks'
# policy, and plan. The parent's
# functions come first (the supervisor), then those only the child calls between
# clone3 and execve (a separate process with its own faults). A function added later
# and not in the file is laid out after the listed ones: a stale file costs pages,
# not correctness.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
bin=$(readlink -f "${SANDBOX_BIN:-.build/release/sandbox}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/trace-entries" Linking/trace-entries.c
nm --defined-only -S "$bin" | awk '$3 ~ /^[tTwW]$/ && $2 !~ /^0+$/ {print $1, $4}' | sort -u -k1,1 > "$work/functions"
cut -d' ' -f1 "$work/functions" > "$work/entries"
mkdir "$work/cwd"
cd "$work/cwd"
trace() {
    local name=$1; shift
    "$work/trace-entries" "$work/entries" "$work/hits.$name" "$bin" sandbox "$@" >/dev/null
}
trace 1 exec --policy strict -- /bin/true
trace 2 exec --policy agent -- /bin/true
trace 3 plan --policy agent
trace 4 exec --policy "$repo/Benchmarks/bench-egress.toml" -- /bin/true
trace 5 exec --policy "$repo/Benchmarks/bench.toml" -- /bin/true
python3 - "$work" "$repo/Linking/text-order.txt" "${1:-}" <<'PY'
import glob, sys
work, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
names = {}
for line in open(f"{work}/functions"):
    address, name = line.split()
    names[int(address, 16)] = name
parent, child, listed = [], [], set()
# Every traced run, in the order traced (hits.1, hits.2, …).
for hits in sorted(glob.glob(f"{work}/hits.*"), key=lambda p: int(p.rsplit(".", 1)[1])):
    for line in open(hits):
        who, address = line.split()
        name = names[int(address, 16)]
        (parent if who == "P" else child).append(name)
lines = []
for name in parent + child:
    if name not in listed:
        listed.add(name)
        lines.append(".text." + name)
if mode == "--check":
    current = set(open(out).read().split())
    missing = [l for l in lines if l not in current]
    print(f"{len(missing)} of the {len(lines)} functions the traced runs call are not in Linking/text-order.txt")
    for l in missing[:20]:
        print("  " + l[len(".text."):])
    sys.exit(0)
# Markers around the block (CSandbox/text_paging.c leaves it out of the page-by-page
# mapping: every page of it is used).
lines = [".text.sbx_text_order_first"] + lines + [".text.sbx_text_order_last"]
with open(out, "w") as f:
    f.write("\n".join(lines) + "\n")
print(f"{out}: {len(lines)} functions")
PY
