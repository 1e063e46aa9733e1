#!/usr/bin/env bash
# The long form of the policy fuzzer (Docs/reliability.md, "Policy fuzzing").
#
#   Scripts/fuzz-policy.sh [SECONDS] [policy-fuzz run options…]
#
# Builds `policy-fuzz` (release, for throughput) and the `sandbox` CLI (debug, with
# its assertions, as the tests use it), then runs generated policies for SECONDS
# (default 600) in worker processes: load + plan in-process, every 50th case also
# through `sandbox check` and `sandbox plan`. Prints the seed first; a crash, a hang
# or an unclear error is kept under the output directory with the command that
# replays it (`policy-fuzz replay --seed S --case N`). Exit 0 only with none.
# Options: --seed S, --cli-every K, --bound SECONDS (per input, default 10),
# --out DIR (default: a new directory on /dev/shm).
# It takes no lock: it starts no sandbox run and touches no shared state; run it
# under `nice -n 10` beside other work.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
[ $# -gt 0 ] && shift
swift build -c release --product policy-fuzz
swift build --product sandbox
exec .build/release/policy-fuzz run --seconds "$seconds" --sandbox "$PWD/.build/debug/sandbox" "$@"
