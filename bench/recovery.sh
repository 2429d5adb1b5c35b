#!/usr/bin/env bash
# Recovery on real parts (see e2e/recovery_bench_test.go): instance kill →
# replacement serving through the router, and cell kill -9 → all its
# instances serving from the other cell (default lost-after 10 s).
# Results go into docs/benchmarks.md with this command.
set -euo pipefail
cd "$(dirname "$0")/.."
go test ./e2e -run '^$' -bench Recovery -benchtime "${RUNS:-10}x" -timeout 60m -v 2>&1 | grep -E 'Benchmark|samples|took|ok|FAIL'
