#!/usr/bin/env bash
# Peak resident memory of one sandboxed `true`, sandbox beside bubblewrap (same
# policy shape as startup.sh). ru_maxrss of the waited-for process tree, in KiB.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v bwrap >/dev/null || { echo "needs bubblewrap (apt-get install bubblewrap)"; exit 1; }
swift build -c release --static-swift-stdlib >/dev/null
bin="$PWD/.build/release/sandbox"
policy="$PWD/Benchmarks/bench.toml"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
python3 - "$bin" "$policy" <<'PY'
import resource, subprocess, sys
bin, policy = sys.argv[1], sys.argv[2]
def peak(cmd, runs=20):
    best = 0
    for _ in range(runs):
        # A fresh python child per measurement: ru_maxrss of RUSAGE_CHILDREN is a
        # high-water mark over all children waited for, so measure in a subprocess.
        out = subprocess.run([sys.executable, "-c",
            "import resource,subprocess,sys; subprocess.run(sys.argv[1:], check=True);"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"] + cmd,
            check=True, capture_output=True, text=True).stdout
        best = max(best, int(out.split()[-1]))
    return best
sbx = peak([bin, "exec", "--policy", policy, "--", "true"])
bw = peak(["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr",
           "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
           "--symlink", "usr/sbin", "/sbin", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
           "--cap-drop", "ALL", "true"])
print(f"peak RSS: sandbox {sbx} KiB, bwrap {bw} KiB, ratio sandbox/bwrap = {sbx / bw:.2f}")
PY
