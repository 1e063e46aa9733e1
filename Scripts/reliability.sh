#!/usr/bin/env bash
# The full form of the reliability suites (issue 14; Docs/reliability.md has the
# figures): LoadTests (2 000 mixed runs, 16 at a time), FaultTests (300 supervisor
# SIGKILLs, then gc), ChurnTests (a 30 s egress run beside 60 short ones) and
# ServeTests' load (2 000 requests from 16 connections to `sandbox serve`, mixed
# policies with egress and timeouts, each result compared with exec's: issue 16,
# acceptance 5). The normal test run (Scripts/test.sh) runs a short form of each.
#
# Run as root on a host no other test suite uses meanwhile: the suites count every
# run directory, cgroup, veth, namespace and mount on the host before and after.
# Extra arguments go to `swift test` (e.g. --skip-build). Each figure can be set on
# its own: SANDBOX_LOAD_RUNS, SANDBOX_LOAD_PARALLEL, SANDBOX_FAULT_KILLS,
# SANDBOX_CHURN_SECONDS, SANDBOX_CHURN_RUNS, SANDBOX_SERVE_REQUESTS.
set -euo pipefail
cd "$(dirname "$0")/.."
export SANDBOX_RELIABILITY=full
export SANDBOX_SERVE_REQUESTS="${SANDBOX_SERVE_REQUESTS:-2000}"
exec swift test --filter 'LoadTests|FaultTests|ChurnTests|ServeTests/mixedLoadFromSixteenConnections' "$@"
