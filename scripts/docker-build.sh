#!/bin/sh
# Builds the omnirouter image without pulling any base image: the static
# binary is built with the local Go toolchain, then copied into a scratch
# image from a build context that holds only the binary and the Dockerfile.
#
#   scripts/docker-build.sh [tag]     (default tag: omnirouter:local)
set -eu
tag=${1:-omnirouter:local}
root=$(cd "$(dirname "$0")/.." && pwd)
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cd "$root"
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$ctx/omnirouter" ./cmd/omnirouter
cp Dockerfile "$ctx/Dockerfile"
docker build -t "$tag" "$ctx"
