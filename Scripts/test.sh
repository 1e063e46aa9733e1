#!/usr/bin/env bash
# The test command: every suite, against the real kernel. Run as root (the
# integration tests also run rootless cases through setpriv). A missing kernel
# feature or fixture FAILS a test; only SANDBOX_TESTS_ALLOW_SKIP=1 turns that into
# a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

# Docker's own default seccomp profile, unchanged, for the test that loads it as-is.
# It comes from Debian's golang-github-docker-docker-dev package; only the file is
# extracted (the package and its dependencies are not installed).
fixtures="$PWD/.build/test-fixtures"
profile="$fixtures/docker-seccomp-default.json"
if [ -z "${SANDBOX_DOCKER_SECCOMP_PROFILE:-}" ] && [ ! -s "$profile" ]; then
    mkdir -p "$fixtures"
    tmp=$(mktemp -d)
    if (cd "$tmp" && apt-get download -qq golang-github-docker-docker-dev 2>/dev/null && dpkg-deb -x ./*.deb x); then
        cp "$tmp/x/usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json" "$profile"
    else
        echo "warning: could not fetch Docker's seccomp profile; its test will fail" >&2
    fi
    rm -rf "$tmp"
fi
export SANDBOX_DOCKER_SECCOMP_PROFILE="${SANDBOX_DOCKER_SECCOMP_PROFILE:-$profile}"

# Every run result and audit log the suite reads is kept here (Harness.keepSample)
# and validated against Docs/schemas afterwards: a field the schema does not
# document fails the run. A filtered run may collect nothing; a full run must not.
samples="$PWD/.build/schema-samples"
rm -rf "$samples"
mkdir -p "$samples"
export SANDBOX_SCHEMA_SAMPLES="$samples"
minimum=(--min-results 1 --min-audit 1)
for arg in "$@"; do
    case "$arg" in --filter|--filter=*|--skip|--skip=*) minimum=() ;; esac
done

status=0
swift test "$@" || status=$?
python3 Scripts/validate-schemas.py "${minimum[@]}" "$samples" || status=1
exit "$status"
