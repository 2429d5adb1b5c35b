#!/usr/bin/env bash
# Kept logs on a real `driftless dev` (see e2e/logs_bench_test.go): lines per
# second through one cell with none lost (no rate limit), and the latency
# from an app printing a line to a `driftless logs -f` reader, p50/p99.
# Results go into docs/benchmarks.md with this command.
set -euo pipefail
cd "$(dirname "$0")/.."
go test ./e2e -run '^$' -bench 'Logs$' -benchtime "${RUNS:-1}x" -timeout 30m -v 2>&1 | grep -E 'Benchmark|burst|ok|FAIL'
