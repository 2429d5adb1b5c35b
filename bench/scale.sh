#!/usr/bin/env bash
# Issue 18's scale benchmark (sim/scale_bench_test.go): a generated
# repository of APPS apps × INSTANCES instances placed on CELLS hollow cells
# (package sim, `driftless sim cells`) through a real controller, NATS,
# Consul (one server and CONSUL_AGENTS client agents the cells spread over,
# as each cell's host runs its own) and router. Prints each phase's time, CPU, heap, Consul writes/s
# and NATS messages/s (DRIFTLESS_SCALE_PROFILE=DIR: a CPU profile per phase).
# Results go into docs/benchmarks.md with this command. To stop a run, end the
# test binary, which runs from Go's build cache, not from any -o copy:
#   pkill -f 'sim.test -test'; pkill -f 'consul agent -node hollow-host-'
# (a run left behind makes the next one's numbers worthless).
#   APPS=100 INSTANCES=10 CELLS=20 bench/scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export DRIFTLESS_SCALE_APPS="${APPS:-1000}" DRIFTLESS_SCALE_INSTANCES="${INSTANCES:-10}" \
	DRIFTLESS_SCALE_CELLS="${CELLS:-100}" DRIFTLESS_SCALE_START_LATENCY_MS="${START_LATENCY_MS:-100}" \
	DRIFTLESS_SCALE_RENEW_INTERVAL_MS="${RENEW_INTERVAL_MS:-15000}" \
	DRIFTLESS_SCALE_CONSUL_AGENTS="${CONSUL_AGENTS:-10}"
extra=()
if [ -n "${CPUPROFILE:-}" ]; then extra+=(-cpuprofile "$CPUPROFILE"); fi
go test ./sim -run '^$' -bench BenchmarkScale -benchtime 1x -timeout 60m "${extra[@]}" 2>&1 |
	grep --line-buffered -E 'Benchmark|commit|loss|table|staged|waiting|ok|FAIL|settled|panic'
