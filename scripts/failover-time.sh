#!/bin/sh
# Measures how long a three-node cluster started by scripts/local-cluster.sh
# takes to accept a write after its leader is killed with SIGKILL: the time
# from the kill to the first successful write on a surviving node. Restarts
# the killed node afterwards (scripts/local-cluster.sh restart).
#
# Usage: scripts/failover-time.sh [rounds]   (OMNIROUTER_PORT_BASE as for
# local-cluster.sh)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
rounds=${1:-3}
base=${OMNIROUTER_PORT_BASE:-8080}
dir=${OMNIROUTER_CLUSTER_DIR:-data/local-cluster/$base}
ms() { date +%s%3N; }
for r in $(seq 1 "$rounds"); do
  leader=$(curl -sf "http://127.0.0.1:$((base + 1))/v1/cluster" | sed -n 's/.*"leader":"n\([0-9]\)".*/\1/p')
  [ -n "$leader" ] || { echo "no leader at http://127.0.0.1:$((base + 1)) (start one with scripts/local-cluster.sh)" >&2; exit 1; }
  survivor=$((leader % 3 + 1))
  kill -9 "$(cat "$dir/n$leader.pid")"
  t0=$(ms)
  i=0
  until curl -sf -o /dev/null -X POST "http://127.0.0.1:$((base + survivor))/v1/conversations" \
      -H 'Content-Type: application/json' -H "Idempotency-Key: failover-$t0" \
      -d "{\"id\":\"failover-$t0\",\"channel\":\"chat\"}"; do
    i=$((i + 1)); [ $i -lt 2000 ] || { echo "no write accepted within 20s" >&2; exit 1; }
    sleep 0.01
  done
  t1=$(ms)
  echo "round $r: leader n$leader killed; first write on n$survivor after $((t1 - t0)) ms"
  scripts/local-cluster.sh restart "n$leader" >/dev/null
done
