#!/usr/bin/env bash
# Deploy latency on a real `driftless dev` (see e2e/deploy_bench_test.go):
# commit → first answer from the new release, and instance create → healthy.
# Results go into docs/benchmarks.md with this command.
set -euo pipefail
cd "$(dirname "$0")/.."
go test ./e2e -run '^$' -bench Deploy -benchtime "${RUNS:-10}x" -timeout 30m -v 2>&1 | grep -E 'Benchmark|samples|ok|FAIL'
