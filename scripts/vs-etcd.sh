#!/bin/sh
# Puts omnirouter beside etcd on this machine: for each round and each
# client count, one etcd run (scripts/etcd-compare.sh: three members, put
# 8-byte keys with 256-byte values) and one omnirouter run
# (scripts/local-cluster.sh on fresh data dirs, `bench --workload create`
# spread over the three nodes, verified), interleaved so that both see the
# same machine. Prints every run, then per client count the medians and
# their ratio. This machine's speed moves by ~3x from day to day: the ratio
# is what carries over, absolute numbers do not.
#
# Usage: scripts/vs-etcd.sh [rounds] [clients...]   (default: 3 rounds, 64)
#   DURATION  length of an omnirouter run (default 20s); etcd's runs are
#             sized to take about as long (ETCD_TOTAL overrides)
#   OMNIROUTER_BIN  a prebuilt binary to measure instead of the working tree
#   OMNIROUTER_PORT_BASE  the local cluster's ports (see local-cluster.sh)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
rounds=${1:-3}
base=${OMNIROUTER_PORT_BASE:-8080}
targets=127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2)),127.0.0.1:$((base + 3))
[ $# -gt 0 ] && shift
[ $# -gt 0 ] || set -- 64
duration=${DURATION:-20s}
secs=${duration%s}
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
  for c in "$@"; do
    # etcd: as many puts as it did per second at this client count on the
    # slowest day seen, times the duration (a run of roughly equal length).
    if [ -n "${ETCD_TOTAL:-}" ]; then total=$ETCD_TOTAL
    elif [ "$c" -lt 4 ]; then total=$((250 * secs))
    elif [ "$c" -lt 32 ]; then total=$((1000 * secs))
    else total=$((2500 * secs))
    fi
    e=$(ETCD_TOTAL=$total scripts/etcd-compare.sh "$c" | tail -n 1)
    echo "$e" | awk -v r="$r" '{ printf "round %d  etcd        %3d clients  %8.0f/s  p50 %6.2f  p99 %6.2f ms\n", r, $1, $3, $4, $6 }'
    echo "$c $(echo "$e" | awk '{ print $3 }')" >>"$out/etcd"

    scripts/local-cluster.sh clean
    scripts/local-cluster.sh >/dev/null
    "$bin" bench --targets "$targets" --duration "$duration" \
      --concurrency "$c" --agents 500 --workload create >"$out/bench" 2>"$out/bench.err" || {
      cat "$out/bench" "$out/bench.err" >&2; exit 1
    }
    scripts/local-cluster.sh stop
    # the summary's line: "create  count  per-sec  p50  p90  p99 ..."
    o=$(awk '$1 == "create" && $2 ~ /^[0-9]+$/ { print $3, $4, $6 }' "$out/bench")
    [ -n "$o" ] || { echo "no create line in the bench report:" >&2; cat "$out/bench" >&2; exit 1; }
    echo "$o" | awk -v r="$r" -v c="$c" '{ printf "round %d  omnirouter  %3d clients  %8.0f/s  p50 %6.2f  p99 %6.2f ms\n", r, c, $1, $2, $3 }'
    echo "$c $(echo "$o" | awk '{ print $1 }')" >>"$out/ours"
  done
done

median() { # median of the second column of the rows of $1 whose first is $2
  awk -v c="$2" '$1 == c { print $2 }' "$1" | sort -n | awk '{ v[NR] = $1 }
    END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
echo
printf '%7s %14s %18s %7s\n' clients 'etcd median/s' 'omnirouter med/s' ratio
for c in "$@"; do
  me=$(median "$out/etcd" "$c")
  mo=$(median "$out/ours" "$c")
  awk -v c="$c" -v e="$me" -v o="$mo" 'BEGIN { printf "%7d %14.0f %18.0f %6.2fx\n", c, e, o, o / e }'
done
