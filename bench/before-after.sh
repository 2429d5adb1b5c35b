#!/usr/bin/env bash
# Before and after a change, in one run: the scheduler and router Go
# benchmarks of REV and of the working tree, interleaved ROUNDS times, then the router beside
# nginx (bench/router -pair) with each build's binary, interleaved too.
# Results go into docs/benchmarks.md with this command.
#
#   bash bench/before-after.sh REV [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:?usage: bench/before-after.sh REV [ROUNDS]}
rounds=${2:-3}
before=$(mktemp -d /tmp/driftless-before.XXXXXX)
trap 'git worktree remove --force "$before" >/dev/null 2>&1 || rm -rf "$before"' EXIT
git worktree add -q --detach "$before" "$rev"
bash bench/router/install.sh
make -s build bin/consul
(cd "$before" && go build -o bin/driftless ./cmd/driftless)
go build -o bin/router-bench ./bench/router

gobench() { # dir label
  (cd "$1" && go test -count=1 -run '^$' -bench . -benchtime 3x ./reconciler/plan/ &&
    go test -count=1 -run '^$' -bench . -benchtime 20000x ./router/proxy ./router/route) |
    awk -v l="$2" '/^Benchmark/ {print l, $0}'
}
for r in $(seq "$rounds"); do
  echo "== round $r: Go benchmarks"
  gobench "$before" before
  gobench . after
done
for r in $(seq "$rounds"); do
  echo "== round $r: router beside nginx (-pair)"
  echo "-- before ($rev)"
  bin/router-bench -pair -rounds 1 -driftless "$before/bin/driftless"
  echo "-- after (working tree)"
  bin/router-bench -pair -rounds 1 -driftless bin/driftless
done
