#!/bin/sh
# A three-node omnirouter cluster on 127.0.0.1, for trying it out and for
# measurements.
#
#   scripts/local-cluster.sh [start] [serve flags...]  build, start n1..n3, wait until ready
#   scripts/local-cluster.sh stop [nN]                 stop every node, or one
#   scripts/local-cluster.sh restart nN                start one node again, with the
#                                                      command line it was started with
#   scripts/local-cluster.sh clean                     stop everything, delete the data
#
# Ports come from OMNIROUTER_PORT_BASE (default 8080): node N serves HTTP on
# base+N (8081-8083) and raft on base+1000+N (9081-9083); with PPROF=1 it
# also serves Go profiles on base+2000+N (10081-10083). Another base runs a
# second cluster beside the first. Everything a cluster keeps — the nodes'
# data directories n1..n3, their logs nN.log, pids and command lines, and
# the binary — is in data/local-cluster/<base>/ (OMNIROUTER_CLUSTER_DIR
# overrides), apart from the single-node default ./data. A start reuses
# the data directories: the nodes carry on where they stopped.
#
# Extra arguments of start go to every node's `omnirouter serve`
# (e.g. --memory-limit 2GiB). OMNIROUTER_BIN runs a binary built elsewhere
# instead of building the working tree (to compare two builds).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
base=${OMNIROUTER_PORT_BASE:-8080}
case $base in '' | *[!0-9]*) echo "OMNIROUTER_PORT_BASE must be a number, got '$base'" >&2; exit 2 ;; esac
dir=${OMNIROUTER_CLUSTER_DIR:-data/local-cluster/$base}
bin=${OMNIROUTER_BIN:-$root/$dir/omnirouter}
http_port() { echo $((base + $1)); }
raft_port() { echo $((base + 1000 + $1)); }
url() { echo "http://127.0.0.1:$(http_port "$1")"; }

cmd=start
case ${1:-} in
  start | stop | restart | clean) cmd=$1; shift ;;
esac

# stop_node N: SIGTERM, then wait for the graceful shutdown (leadership
# transfer, raft, the stores) so that the ports are free again.
stop_node() {
  [ -f "$dir/n$1.pid" ] || return 0
  pid=$(cat "$dir/n$1.pid")
  rm -f "$dir/n$1.pid"
  kill "$pid" 2>/dev/null || return 0
  waited=0
  while kill -0 "$pid" 2>/dev/null; do
    waited=$((waited + 1)); [ $waited -lt 300 ] || { echo "n$1 (pid $pid) did not stop" >&2; return 1; }
    sleep 0.1
  done
}

# launch N: start node N with the command line saved in nN.args.
launch() {
  node=$1
  set --
  while IFS= read -r a; do set -- "$@" "$a"; done <"$dir/n$node.args"
  "$bin" "$@" >>"$dir/n$node.log" 2>&1 &
  echo $! >"$dir/n$node.pid"
}

# wait_ready N...: until every node's /readyz answers 200 and the cluster
# view shows every member caught up.
wait_ready() {
  tries=0
  while [ $tries -lt 300 ]; do
    ok=1
    for n in "$@"; do
      if ! kill -0 "$(cat "$dir/n$n.pid")" 2>/dev/null; then
        echo "n$n exited: $(tail -n 1 "$dir/n$n.log")" >&2
        echo "(another cluster on these ports? OMNIROUTER_PORT_BASE picks others)" >&2
        return 1
      fi
      curl -sf -o /dev/null "$(url "$n")/readyz" || { ok=0; break; }
    done
    if [ $ok = 1 ]; then
      view=$(curl -sf "$(url "$1")/v1/cluster" || true)
      case $view in *'"caught_up":true'*) ;; *) ok=0 ;; esac
      case $view in *'"caught_up":false'*) ok=0 ;; esac
    fi
    [ $ok = 1 ] && return 0
    tries=$((tries + 1)); sleep 0.1
  done
  echo "not ready after 30s: see $dir/n*.log" >&2
  return 1
}

node_number() {
  case ${1:-} in
    n1 | n2 | n3) echo "${1#n}" ;;
    *) echo "name a node: n1, n2 or n3" >&2; exit 2 ;;
  esac
}

case $cmd in
stop)
  if [ $# -gt 0 ]; then
    i=$(node_number "$1")
    stop_node "$i"
    exit
  fi
  for i in 1 2 3; do stop_node $i; done
  exit 0
  ;;
clean)
  for i in 1 2 3; do stop_node $i; done
  rm -rf "$dir"
  exit 0
  ;;
restart)
  i=$(node_number "${1:-}")
  [ -f "$dir/n$i.args" ] || { echo "n$i was never started here ($dir)" >&2; exit 1; }
  stop_node "$i"
  launch "$i"
  wait_ready "$i"
  echo "n$i ready: $(url "$i")"
  exit 0
  ;;
esac

mkdir -p "$dir"
[ -n "${OMNIROUTER_BIN:-}" ] || go build -o "$bin" ./cmd/omnirouter
join=$(url 1),$(url 2),$(url 3)
# Three nodes share this machine: each gets a quarter of its memory as its
# heap's soft limit (--memory-limit auto would give each 80% of all of it).
# A --memory-limit among the arguments comes later and wins; so do
# OMNIROUTER_MEMORY_LIMIT (the flag is then not given) and GOMEMLIMIT.
memlimit=$(awk '/^MemTotal:/ { printf "--memory-limit=%dMiB", $2 / 1024 / 4 }' /proc/meminfo 2>/dev/null || true)
[ -z "${OMNIROUTER_MEMORY_LIMIT:-}" ] || memlimit=""
for i in 1 2 3; do
  if [ -f "$dir/n$i.pid" ] && kill -0 "$(cat "$dir/n$i.pid")" 2>/dev/null; then
    echo "n$i is already running (pid $(cat "$dir/n$i.pid")); scripts/local-cluster.sh stop first" >&2
    exit 1
  fi
  {
    printf '%s\n' serve
    [ -z "$memlimit" ] || printf '%s\n' "$memlimit"
    [ -z "${PPROF:-}" ] || printf '%s\n' --pprof-addr "127.0.0.1:$((base + 2000 + i))"
    printf '%s\n' --node-id "n$i" --http-addr "127.0.0.1:$(http_port $i)" --raft-addr "127.0.0.1:$(raft_port $i)" \
      --data-dir "$dir/n$i" --bootstrap-expect 3 --join "$join"
    for a in "$@"; do printf '%s\n' "$a"; done
  } >"$dir/n$i.args"
  launch $i
done
if ! wait_ready 1 2 3; then
  for i in 1 2 3; do stop_node $i; done
  exit 1
fi
echo "cluster ready: $(url 1) $(url 2) $(url 3)"
