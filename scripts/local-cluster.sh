#!/bin/sh
# Starts a three-node omnirouter cluster on 127.0.0.1 (HTTP 8081-8083, raft
# 7001-7003, data in ./data/n1..n3) and waits until it serves. Stop it with
# `scripts/local-cluster.sh stop`. Logs go to ./data/nN.log. With PPROF=1,
# node N also serves Go profiles on 127.0.0.1:606N.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin=${OMNIROUTER_BIN:-$root/data/omnirouter}
if [ "${1:-}" = stop ]; then
  pids=""
  for i in 1 2 3; do
    if [ -f data/n$i.pid ]; then
      pid=$(cat data/n$i.pid)
      kill "$pid" 2>/dev/null && pids="$pids $pid"
      rm -f data/n$i.pid
    fi
  done
  # A node shuts down gracefully (leadership transfer, then raft, then the
  # stores): wait for it, so that a new cluster can take the ports.
  for pid in $pids; do
    n=0
    while kill -0 "$pid" 2>/dev/null; do
      n=$((n + 1)); [ $n -lt 300 ] || { echo "node $pid did not stop" >&2; exit 1; }
      sleep 0.1
    done
  done
  exit 0
fi
mkdir -p data
# OMNIROUTER_BIN names a binary built elsewhere (to compare two builds).
[ -n "${OMNIROUTER_BIN:-}" ] || go build -o "$bin" ./cmd/omnirouter
join=http://127.0.0.1:8081,http://127.0.0.1:8082,http://127.0.0.1:8083
# Three nodes share this machine: each gets a quarter of its memory as its
# heap's soft limit (--memory-limit auto would give each 80% of all of it).
# A --memory-limit among the arguments comes later and wins; so do
# OMNIROUTER_MEMORY_LIMIT (the flag is then not given) and GOMEMLIMIT.
memlimit=$(awk '/^MemTotal:/ { printf "--memory-limit=%dMiB", $2 / 1024 / 4 }' /proc/meminfo 2>/dev/null || true)
[ -z "${OMNIROUTER_MEMORY_LIMIT:-}" ] || memlimit=""
for i in 1 2 3; do
  pprof=""
  [ -n "${PPROF:-}" ] && pprof="--pprof-addr 127.0.0.1:606$i"
  # shellcheck disable=SC2086
  "$bin" serve $pprof $memlimit --node-id n$i --http-addr 127.0.0.1:808$i --raft-addr 127.0.0.1:700$i \
    --data-dir data/n$i --bootstrap-expect 3 --join $join "$@" >data/n$i.log 2>&1 &
  echo $! >data/n$i.pid
done
for _ in $(seq 1 100); do
  if curl -sf http://127.0.0.1:8081/readyz >/dev/null && curl -sf http://127.0.0.1:8082/readyz >/dev/null \
     && curl -sf http://127.0.0.1:8083/readyz >/dev/null; then
    echo "cluster ready: http://127.0.0.1:8081 http://127.0.0.1:8082 http://127.0.0.1:8083"
    exit 0
  fi
  sleep 0.1
done
echo "cluster did not become ready; see data/n*.log" >&2
exit 1
