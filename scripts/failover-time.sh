#!/bin/sh
# Measures how long a three-node cluster started by scripts/local-cluster.sh
# takes to accept a write after its leader is killed with SIGKILL: the time
# from the kill to the first successful write on a surviving node. Restarts
# the killed node afterwards. Usage: scripts/failover-time.sh [rounds]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
rounds=${1:-3}
ms() { date +%s%3N; }
for r in $(seq 1 "$rounds"); do
  leader=$(curl -sf http://127.0.0.1:8081/v1/cluster | sed -n 's/.*"leader":"n\([0-9]\)".*/\1/p')
  [ -n "$leader" ] || { echo "no leader at http://127.0.0.1:8081 (start one with scripts/local-cluster.sh)" >&2; exit 1; }
  survivor=$(( leader % 3 + 1 ))
  kill -9 "$(cat data/n$leader.pid)"
  t0=$(ms)
  i=0
  until curl -sf -o /dev/null -X POST "http://127.0.0.1:808$survivor/v1/conversations" \
      -H "Idempotency-Key: failover-$t0" -H "Content-Type: application/json" -d "{\"id\":\"failover-$t0\",\"channel\":\"chat\"}"; do
    i=$((i + 1)); [ $i -lt 2000 ] || { echo "no write accepted within 20s" >&2; exit 1; }
    sleep 0.01
  done
  t1=$(ms)
  echo "round $r: leader n$leader killed; first write on n$survivor after $((t1 - t0)) ms"
  # Restart the killed node with its own command line.
  bin=${OMNIROUTER_BIN:-$root/data/omnirouter}
  "$bin" serve --node-id n$leader --http-addr 127.0.0.1:808$leader --raft-addr 127.0.0.1:700$leader \
    --data-dir data/n$leader --bootstrap-expect 3 \
    --join http://127.0.0.1:8081,http://127.0.0.1:8082,http://127.0.0.1:8083 >>data/n$leader.log 2>&1 &
  echo $! >data/n$leader.pid
  i=0
  until curl -sf "http://127.0.0.1:808$leader/readyz" >/dev/null; do
    i=$((i + 1)); [ $i -lt 300 ] || { echo "n$leader did not come back" >&2; exit 1; }
    sleep 0.1
  done
done
