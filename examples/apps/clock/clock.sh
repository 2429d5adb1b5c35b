#!/bin/sh
# A worker without a route: prints the time every few seconds.
# `driftless logs clock` streams its output.
while true; do
  echo "tick from clock instance ${INSTANCE_INDEX}: $(date -u +%H:%M:%S)"
  sleep "${INTERVAL:-5}"
done
