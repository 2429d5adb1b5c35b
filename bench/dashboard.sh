#!/usr/bin/env bash
# The web dashboard's first load in headless chromium against a real
# `driftless dev` (see e2e/dashboard_bench_test.go): navigation start →
# apps list rendered with the API's answer. Results go into
# docs/benchmarks.md with this command.
set -euo pipefail
cd "$(dirname "$0")/.."
go test ./e2e -run '^$' -bench Dashboard -benchtime "${RUNS:-20}x" -timeout 40m -v 2>&1 | grep -E 'Benchmark|samples|ok|FAIL|console'
