#!/bin/sh
# Measures etcd v3 on this machine the way the reference numbers in our
# performance issue were taken, so that our load tool's figures can be set
# beside etcd's, measured minutes apart on the same hardware.
#
# For each client count (default: 1 16 64) it starts a fresh three-member
# etcd cluster on 127.0.0.1 (client ports 2379/22379/32379, peer ports
# 2380/22380/32380, data in ./data/etcd/mN, logs in ./data/etcd/mN.log,
# default fsync), runs etcd's own benchmark against all three members:
#   benchmark --conns=N --clients=N put --key-size=8 --sequential-keys
#             --total=T --val-size=256
# prints one line (clients, requests/s, p50/p90/p99 in ms), then stops the
# cluster and removes ./data/etcd.
#
# Usage: scripts/etcd-compare.sh [clients...]
#   ETCD_TOTAL   requests per run (default: 5000 below 4 clients, 30000
#                below 32, else 100000)
#   ETCD_ROUNDS  how many times to run each client count (default 1)
#
# The first run builds etcd and benchmark (ETCD_VERSION, default v3.6.8) into
# ./data/etcd-bin; that needs only the Go module proxy. etcd's modules carry
# replace directives, so `go install pkg@version` refuses them: they are built
# from a throwaway module in ./data/etcd-bin/src instead.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
version=${ETCD_VERSION:-v3.6.8}
rounds=${ETCD_ROUNDS:-1}
bin=$root/data/etcd-bin
work=$root/data/etcd
go=go
command -v go >/dev/null 2>&1 || go=/usr/local/go/bin/go
[ $# -gt 0 ] || set -- 1 16 64

if [ "$(cat "$bin/VERSION" 2>/dev/null)" != "$version" ] || [ ! -x "$bin/etcd" ] || [ ! -x "$bin/benchmark" ]; then
  echo "building etcd and benchmark $version into data/etcd-bin (Go module proxy)" >&2
  rm -rf "$bin"
  mkdir -p "$bin/src"
  printf 'module etcdcompare\n\ngo 1.24\n' >"$bin/src/go.mod"
  (
    cd "$bin/src"
    export GOWORK=off CGO_ENABLED=0
    "$go" get go.etcd.io/etcd/server/v3@"$version" go.etcd.io/etcd/v3/tools/benchmark@"$version"
    "$go" build -o "$bin/etcd" go.etcd.io/etcd/server/v3
    "$go" build -o "$bin/benchmark" go.etcd.io/etcd/v3/tools/benchmark
  ) >"$bin/build.log" 2>&1 || { cat "$bin/build.log" >&2; exit 1; }
  echo "$version" >"$bin/VERSION"
fi

pids=""
# Members are stopped one at a time: a leader stopping gracefully first hands
# leadership to a live peer, and waits ~7 s for one if all stop at once.
stop() {
  for pid in $pids; do
    kill "$pid" 2>/dev/null || true
    n=0
    while kill -0 "$pid" 2>/dev/null; do
      n=$((n + 1))
      if [ $n -ge 100 ]; then kill -9 "$pid" 2>/dev/null || true; fi
      sleep 0.1
    done
  done
  pids=""
  rm -rf "$work"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ports="2379 22379 32379"
for p in $ports; do
  if curl -s -o /dev/null "http://127.0.0.1:$p/health"; then
    echo "something already listens on 127.0.0.1:$p; stop it first" >&2
    trap - EXIT; exit 1
  fi
done
cluster=m1=http://127.0.0.1:2380,m2=http://127.0.0.1:22380,m3=http://127.0.0.1:32380
endpoints=127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379

start() {
  rm -rf "$work"
  mkdir -p "$work"
  i=0
  for p in $ports; do
    i=$((i + 1))
    "$bin/etcd" --name m$i --data-dir "$work/m$i" \
      --listen-client-urls http://127.0.0.1:$p --advertise-client-urls http://127.0.0.1:$p \
      --listen-peer-urls http://127.0.0.1:$((p + 1)) --initial-advertise-peer-urls http://127.0.0.1:$((p + 1)) \
      --initial-cluster $cluster --initial-cluster-token etcd-compare --initial-cluster-state new \
      >"$work/m$i.log" 2>&1 &
    pids="$pids $!"
  done
  # /health answers 200 with "health":"true" once the member has a leader
  # and can serve a linearizable read.
  n=0
  while :; do
    ok=0
    for p in $ports; do
      curl -sf "http://127.0.0.1:$p/health" 2>/dev/null | grep -q '"health":"true"' && ok=$((ok + 1))
    done
    [ $ok -eq 3 ] && return 0
    n=$((n + 1))
    if [ $n -ge 300 ]; then
      echo "etcd cluster did not become healthy in 30s; logs:" >&2
      tail -n 20 "$work"/m*.log >&2
      exit 1
    fi
    sleep 0.1
  done
}

echo "etcd $version, 3 members on 127.0.0.1, put key-size=8 val-size=256 sequential keys, $(nproc) CPUs"
printf '%7s %8s %11s %9s %9s %9s\n' clients total 'req/s' 'p50 ms' 'p90 ms' 'p99 ms'
r=0
while [ $r -lt "$rounds" ]; do
  r=$((r + 1))
  for c in "$@"; do
    if [ -n "${ETCD_TOTAL:-}" ]; then total=$ETCD_TOTAL
    elif [ "$c" -lt 4 ]; then total=5000
    elif [ "$c" -lt 32 ]; then total=30000
    else total=100000
    fi
    start
    "$bin/benchmark" --endpoints=$endpoints --conns="$c" --clients="$c" --precise \
      put --key-size=8 --sequential-keys --total="$total" --val-size=256 >"$work/bench.out" 2>&1 || {
      echo "benchmark failed:" >&2; cat "$work/bench.out" >&2; exit 1
    }
    # "Requests/sec:<tab>N" and "  50% in 0.0012 secs." lines (seconds).
    line=$(awk -v c="$c" -v t="$total" '
      /Requests\/sec:/ { rps = $2 }
      $1 == "50%" && $2 == "in" { p50 = $3 * 1000 }
      $1 == "90%" && $2 == "in" { p90 = $3 * 1000 }
      $1 == "99%" && $2 == "in" { p99 = $3 * 1000 }
      END { if (rps == "") exit 1
            printf "%7d %8d %11.1f %9.2f %9.2f %9.2f\n", c, t, rps, p50, p90, p99 }' "$work/bench.out") || {
      echo "could not parse benchmark output:" >&2; cat "$work/bench.out" >&2; exit 1
    }
    echo "$line"
    stop
  done
done
