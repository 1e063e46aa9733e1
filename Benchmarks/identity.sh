#!/usr/bin/env bash
# What a uid of the run's own costs at start-up (issue 11): one hyperfine run with
# bubblewrap, the sandbox with `host_uid = "own"` (the default: a leased uid, a user
# namespace it owns, idmapped writable binds) and with `host_uid = "invoker"`, each
# without and with a writable bind of the working directory (the idmapped case).
# BEFORE=/path/to/an/older/sandbox adds that binary's run of the same policy.
#
#   Benchmarks/identity.sh          # release build, 200 runs each; run as root
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)"; exit 1; }
command -v bwrap >/dev/null || { echo "needs bubblewrap (apt-get install bubblewrap)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "run as root: host_uid applies to a root invoker's runs"; exit 1; }
[ -n "${NO_BUILD:-}" ] || Scripts/build-release.sh >/dev/null
bin="$PWD/.build/release/sandbox"
runs="${RUNS:-200}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pol="$work/policies"; mkdir -p "$pol" "$work/ws"
bench="$PWD/Benchmarks/bench.toml"
printf 'extends = ["%s"]\n[process]\nhost_uid = "own"\n' "$bench" > "$pol/own.toml"
printf 'extends = ["%s"]\n[process]\nhost_uid = "invoker"\n' "$bench" > "$pol/invoker.toml"
printf 'extends = ["%s"]\n[filesystem]\nrw = ["{cwd}"]\n' "$pol/own.toml" > "$pol/own-rw.toml"
printf 'extends = ["%s"]\n[filesystem]\nrw = ["{cwd}"]\n' "$pol/invoker.toml" > "$pol/invoker-rw.toml"
cd "$work/ws"
for p in own invoker own-rw invoker-rw; do "$bin" exec --policy "$pol/$p.toml" -- true; done  # warm the seccomp cache

bwrap_cmd="bwrap --unshare-all --die-with-parent --new-session --ro-bind /usr /usr \
--symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/sbin /sbin \
--proc /proc --dev /dev --tmpfs /tmp --bind $work/ws $work/ws --cap-drop ALL true"
extra=()
if [ -n "${BEFORE:-}" ]; then
    printf 'extends = ["%s"]\n[filesystem]\nrw = ["{cwd}"]\n' "$bench" > "$pol/before-rw.toml"
    "$BEFORE" exec --policy "$pol/before-rw.toml" -- true
    extra=(-n before-rw "$BEFORE exec --policy $pol/before-rw.toml -- true")
fi
hyperfine -N --warmup 20 --runs "$runs" --export-json "$work/identity.json" \
    -n bwrap "$bwrap_cmd" \
    -n own "$bin exec --policy $pol/own.toml -- true" \
    -n invoker "$bin exec --policy $pol/invoker.toml -- true" \
    -n own-rw "$bin exec --policy $pol/own-rw.toml -- true" \
    -n invoker-rw "$bin exec --policy $pol/invoker-rw.toml -- true" \
    "${extra[@]}"

python3 - "$work/identity.json" <<'PY'
import json, sys
r = {x["command"]: x["mean"] * 1e3 for x in json.load(open(sys.argv[1]))["results"]}
b = r["bwrap"]
for name, ms in r.items():
    print(f"{name:12s} {ms:6.2f} ms  {ms / b:4.2f}x bwrap")
PY
