#!/bin/sh
# What one webhook subscription costs a loaded cluster: runs of
# `bench --workload create` (64 clients, spread over three local nodes)
# without and with a subscription whose receiver (tools/webhookrecv, on
# this machine) verifies every delivery, interleaved in pairs (without
# then with, then with then without, ...), each on a fresh cluster. During
# the runs with a subscription it samples the subscription's lag (GET
# /v1/webhooks/bench) twice a second, and after each it times how long the
# lag takes to reach 0. Prints every run, the medians, the paired ratios
# and the lag.
#
# Usage: scripts/webhook-bench.sh [pairs] [events-json]
#   (default: 6 pairs, '["conversation.queued"]': one delivery per create)
#   DURATION  length of a run (default 15s)
#   OMNIROUTER_BIN  a prebuilt binary to measure instead of the working tree
#   OMNIROUTER_PORT_BASE  the local cluster's ports (default 9200; see
#             local-cluster.sh); the receiver listens on base+99
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
pairs=${1:-6}
events=${2:-'["conversation.queued"]'}
duration=${DURATION:-15s}
base=${OMNIROUTER_PORT_BASE:-9200}
export OMNIROUTER_PORT_BASE=$base
targets=127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2)),127.0.0.1:$((base + 3))
api=http://127.0.0.1:$((base + 1))
hook=127.0.0.1:$((base + 99))
out=$(mktemp -d)
trap 'kill "$rpid" 2>/dev/null || true; scripts/local-cluster.sh clean >/dev/null 2>&1 || true; rm -rf "$out"' EXIT
rpid=

if [ -z "${OMNIROUTER_BIN:-}" ]; then
  go build -o "$out/omnirouter" ./cmd/omnirouter
fi
bin=${OMNIROUTER_BIN:-$out/omnirouter}
export OMNIROUTER_BIN=$bin
go build -o "$out/webhookrecv" ./tools/webhookrecv

lag() {
  curl -s "$api/v1/webhooks/bench?consistency=stale" | sed -n 's/.*"lag":\([0-9]*\).*/\1/p'
}

# run MODE PAIR: one run on a fresh cluster; MODE is with or without.
run() {
  scripts/local-cluster.sh clean >/dev/null
  scripts/local-cluster.sh >/dev/null
  sampler=
  if [ "$1" = with ]; then
    "$out/webhookrecv" --addr "$hook" --secret whsec_bench &
    rpid=$!
    curl -sf -X POST "$api/v1/webhooks" -H 'Content-Type: application/json' \
      -d "{\"id\":\"bench\",\"url\":\"http://$hook/hook\",\"events\":$events,\"secret\":\"whsec_bench\"}" >/dev/null
    (while :; do lag; echo; sleep 0.5; done) >"$out/lag-$2" &
    sampler=$!
  fi
  "$bin" bench --targets "$targets" --duration "$duration" --concurrency 64 --agents 500 \
    --workload create --skip-verify --sample-every 0 >"$out/bench" 2>"$out/bench.err" || {
    cat "$out/bench" "$out/bench.err" >&2; exit 1
  }
  drain=
  if [ -n "$sampler" ]; then
    start=$(date +%s%N)
    i=0
    while [ "$(lag)" != 0 ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
    drain=$((($(date +%s%N) - start) / 1000000))
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    stats=$(curl -s "http://$hook/stats")
    echo "$stats" >>"$out/receiver"
    kill "$rpid" 2>/dev/null || true
    wait "$rpid" 2>/dev/null || true
    rpid=
  fi
  scripts/local-cluster.sh stop
  o=$(awk '$1 == "create" && $2 ~ /^[0-9]+$/ { print $3, $4, $6 }' "$out/bench")
  [ -n "$o" ] || { echo "no create line in the bench report:" >&2; cat "$out/bench" >&2; exit 1; }
  echo "$1 $2 $o" >>"$out/runs"
  echo "$o" | awk -v m="$1" -v p="$2" -v d="$drain" '{ printf "pair %d  %-7s  %8.0f creates/s  p50 %6.2f  p99 %6.2f ms%s\n", p, m, $1, $2, $3, (d == "" ? "" : "  lag 0 " d " ms after the run") }'
  [ -z "$drain" ] || echo "        receiver: $stats"
}

p=0
while [ "$p" -lt "$pairs" ]; do
  p=$((p + 1))
  if [ $((p % 2)) = 1 ]; then run without $p; run with $p; else run with $p; run without $p; fi
done

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
wo=$(awk '$1 == "without" { print $3 }' "$out/runs" | median)
wi=$(awk '$1 == "with" { print $3 }' "$out/runs" | median)
ratios=$(awk '{ r[$2, $1] = $3 } END { for (i = 1; (i, "with") in r; i++) printf "%.3f\n", r[i, "with"] / r[i, "without"] }' "$out/runs")
echo "medians: without $wo, with $wi creates/s: $(echo "$wo $wi" | awk '{ printf "%.3f", $2 / $1 }')"
echo "paired ratios (with/without): $(echo "$ratios" | tr '\n' ' ')median $(echo "$ratios" | median)"
cat "$out"/lag-* | awk 'NF' | sort -n | awk '{ v[NR] = $1 } END { printf "lag (events behind, every 0.5 s): median %d, p90 %d, max %d over %d samples\n", v[int(NR / 2) + 1], v[int(NR * 0.9)], v[NR], NR }'
awk -F'[{}:,"]+' '{ for (i = 2; i < NF; i += 2) t[$i] += $(i + 1) }
  END { printf "receiver, all runs: %d requests, %d events delivered, %d duplicates, %d bad signatures, %d out of order\n",
    t["requests"], t["delivered"], t["duplicates"], t["bad_signatures"], t["out_of_order"] }' "$out/receiver"
