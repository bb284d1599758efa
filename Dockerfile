# omnirouter image: a static binary in an empty (scratch) image.
#
# No base image is pulled, so the binary is built with the local Go
# toolchain first and only copied in (scripts/docker-build.sh does both):
#
#   CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o omnirouter ./cmd/omnirouter
#   docker build -t omnirouter:local .
#
# Run one node (peers reach it at the advertised addresses):
#
#   docker run -p 8080:8080 -v omnirouter-data:/data omnirouter:local serve \
#     --advertise-http http://HOST:8080 --advertise-raft HOST:7000 --auth-file /auth.json
FROM scratch
COPY omnirouter /omnirouter
ENV OMNIROUTER_HTTP_ADDR=0.0.0.0:8080 \
    OMNIROUTER_RAFT_ADDR=0.0.0.0:7000 \
    OMNIROUTER_DATA_DIR=/data
VOLUME /data
EXPOSE 8080 7000
ENTRYPOINT ["/omnirouter"]
CMD ["serve"]
