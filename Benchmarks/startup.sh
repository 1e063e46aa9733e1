#!/usr/bin/env bash
# Start-up cost of one sandboxed `true`, side by side with bubblewrap, in one
# hyperfine run so both see the same machine state. Reports the ratio.
#
#   Benchmarks/startup.sh            # release build, 200 runs each
#
# The sandbox run uses Benchmarks/bench.toml: a private root with /usr and friends
# read-only, a tmpfs /tmp, new pid/mount/ipc/uts/net/cgroup namespaces, Landlock,
# the default seccomp profile (cached BPF), no capabilities — more than the bwrap
# line below, which is bwrap's closest equivalent (--unshare-all, private /usr root).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)"; exit 1; }
command -v bwrap >/dev/null || { echo "needs bubblewrap (apt-get install bubblewrap)"; exit 1; }
swift build -c release --static-swift-stdlib >/dev/null
bin="$PWD/.build/release/sandbox"
runs="${RUNS:-200}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$bin" exec --policy "$OLDPWD/Benchmarks/bench.toml" -- true   # warm the seccomp cache

bwrap_cmd="bwrap --unshare-all --die-with-parent --new-session --ro-bind /usr /usr \
--symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/sbin /sbin \
--proc /proc --dev /dev --tmpfs /tmp --cap-drop ALL true"

hyperfine -N --warmup 20 --runs "$runs" --export-json "$work/startup.json" \
    -n sandbox "$bin exec --policy $OLDPWD/Benchmarks/bench.toml -- true" \
    -n bwrap "$bwrap_cmd" \
    -n true "true"

python3 - "$work/startup.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
s, b = r["sandbox"]["mean"] * 1e3, r["bwrap"]["mean"] * 1e3
print(f"sandbox {s:.2f} ms, bwrap {b:.2f} ms, ratio sandbox/bwrap = {s / b:.2f}")
PY
