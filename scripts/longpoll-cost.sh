#!/bin/sh
# What event readers cost writes: create runs, each on a fresh three-node
# cluster, with no long-poll readers and with N of them (re-polling GET /v1/events
# with wait=30s, spread over the nodes), alternated round by round so that
# both see the same machine. The readers run in a process of their own
# (`bench --workload none --long-polls N`), as they would on other hosts,
# so that the writers' latency is not their client's scheduling; they
# still share this machine's cores. Prints every run, then the medians of
# each.
#
# Usage: scripts/longpoll-cost.sh [rounds] [readers]   (default: 3 rounds, 1000)
#   DURATION     length of a run, in seconds (default 20s)
#   CONCURRENCY  create clients (default 16)
#   RATE         creates per second offered, open loop (default 100; 0: closed loop)
#   SERVE_FLAGS  extra flags for every node (e.g. "--events-linger 0")
#   OMNIROUTER_BIN  a prebuilt binary to measure instead of the working tree
#   OMNIROUTER_PORT_BASE  the local cluster's ports (see local-cluster.sh)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
rounds=${1:-3}
readers=${2:-1000}
base=${OMNIROUTER_PORT_BASE:-8080}
targets=127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2)),127.0.0.1:$((base + 3))
duration=${DURATION:-20s}
concurrency=${CONCURRENCY:-16}
rate=${RATE:-100}
out=$(mktemp -d)
trap 'scripts/local-cluster.sh clean >/dev/null 2>&1 || true; rm -rf "$out"' EXIT

if [ -z "${OMNIROUTER_BIN:-}" ]; then
  go build -o "$out/omnirouter" ./cmd/omnirouter
fi
bin=${OMNIROUTER_BIN:-$out/omnirouter}
export OMNIROUTER_BIN=$bin

r=0
while [ "$r" -lt "$rounds" ]; do
  r=$((r + 1))
  for lp in 0 "$readers"; do
    scripts/local-cluster.sh clean >/dev/null 2>&1 || true
    # shellcheck disable=SC2086 # SERVE_FLAGS is a list of flags
    scripts/local-cluster.sh start ${SERVE_FLAGS:-} >/dev/null
    rpid=
    if [ "$lp" -gt 0 ]; then
      # The readers start first and stop after the writers.
      "$bin" bench --targets "$targets" --duration "$((${duration%s} + 4))s" --workload none \
        --long-polls "$lp" >"$out/readers" 2>"$out/readers.err" &
      rpid=$!
      sleep 2
    fi
    "$bin" bench --targets "$targets" --duration "$duration" --concurrency "$concurrency" \
      --rate "$rate" --agents 500 --workload create >"$out/bench" 2>"$out/bench.err" || {
      cat "$out/bench" "$out/bench.err" >&2; exit 1
    }
    errs=
    if [ -n "$rpid" ]; then
      wait "$rpid" || { cat "$out/readers" "$out/readers.err" >&2; exit 1; }
      errs=$(grep '^long-polls:' "$out/readers" || true)
    fi
    o=$(awk '$1 == "create" && $2 ~ /^[0-9]+$/ { print $3, $4, $6 }' "$out/bench")
    [ -n "$o" ] || { echo "no create line in the bench report:" >&2; cat "$out/bench" >&2; exit 1; }
    echo "$o" | awk -v r="$r" -v lp="$lp" '{ printf "round %d  %5d readers  %8.0f creates/s  p50 %6.2f  p99 %7.2f ms\n", r, lp, $1, $2, $3 }'
    [ -z "$errs" ] || echo "           $errs"
    echo "$lp $o" >>"$out/runs"
  done
done
echo
for lp in 0 "$readers"; do
  awk -v lp="$lp" '$1 == lp { print $4 }' "$out/runs" | sort -n |
    awk -v lp="$lp" '{ v[NR] = $1 } END { printf "median create p99 with %5d readers: %.2f ms (%d runs)\n", lp, v[int((NR + 1) / 2)], NR }'
done
