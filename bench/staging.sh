#!/usr/bin/env bash
# Commit → serving for each example app (see e2e/staging_bench_test.go):
# once cold, then warm (one file changed each time). Needs the bookworm
# stack (make setup). Results go into docs/benchmarks.md with this command.
set -euo pipefail
cd "$(dirname "$0")/.."
go test ./e2e -run '^$' -bench Staging -benchtime "${RUNS:-5}x" -timeout 60m -v 2>&1 | grep -E 'Benchmark|samples|cold|ok|FAIL'
