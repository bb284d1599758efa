#!/bin/sh
# Docker Compose smoke test: builds the scratch image, starts the three-node
# cluster of docker-compose.yml, creates an agent and a conversation through
# a follower, stops a node, checks that the cluster still serves reads and
# writes, and tears everything down (volumes included).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
compose() { docker-compose -p "$project" "$@"; }
project=omnirouter-smoke-$$
fail() { echo "compose smoke: FAIL: $*" >&2; compose logs --tail 40 >&2 || true; exit 1; }
trap 'compose down -v --remove-orphans >/dev/null 2>&1 || true' EXIT

scripts/docker-build.sh omnirouter:local >/dev/null
compose up -d

# wait_for URL PATTERN: poll (with a deadline) until the body matches.
wait_for() {
  i=0
  while [ $i -lt 300 ]; do
    if curl -sf "$1" 2>/dev/null | grep -q "$2"; then return 0; fi
    i=$((i + 1)); sleep 0.2
  done
  return 1
}
for port in 8081 8082 8083; do
  wait_for "http://127.0.0.1:$port/readyz" . || fail "node on $port not ready"
done
leader=$(curl -sf http://127.0.0.1:8081/v1/cluster | sed -n 's/.*"leader":"\([^"]*\)".*/\1/p')
case "$leader" in n1) follower=8082 other=8083 ;; n2) follower=8083 other=8081 ;; n3) follower=8081 other=8082 ;; *) fail "no leader ($leader)" ;; esac
echo "leader $leader; writing through the follower on $follower"

curl -sf -X PUT -H 'Content-Type: application/json' "http://127.0.0.1:$follower/v1/agents/a1" -d '{"name":"Ana","capacity":{"chat":2,"messaging":2}}' >/dev/null || fail "agent via follower"
curl -sf -X PUT -H 'Content-Type: application/json' "http://127.0.0.1:$follower/v1/agents/a1/status" -d '{"status":"online"}' >/dev/null || fail "status via follower"
curl -sf -X POST -H 'Content-Type: application/json' "http://127.0.0.1:$follower/v1/conversations" -d '{"id":"c1","channel":"chat","message":"hello"}' | grep -q '"state":"offered"' || fail "conversation via follower not offered"

echo "stopping the leader $leader"
compose stop "$leader" >/dev/null
wait_for "http://127.0.0.1:$other/v1/conversations/c1" '"id":"c1"' || fail "c1 not readable after the leader stopped"
i=0
until curl -sf -X POST -H 'Content-Type: application/json' "http://127.0.0.1:$other/v1/conversations" -d '{"id":"c2","channel":"chat"}' >/dev/null; do
  i=$((i + 1)); [ $i -lt 100 ] || fail "no write accepted after the leader stopped"; sleep 0.2
done
curl -sf "http://127.0.0.1:$follower/v1/agents/a1" | grep -q '"id":"a1"' || fail "a1 missing"
echo "compose smoke: ok (a new leader serves; nothing acknowledged was lost)"
