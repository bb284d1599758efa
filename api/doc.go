// Package api owns omnirouter's public HTTP interface (docs/contract.md): the gin
// routes, JSON shapes, validation on the way in, authentication and roles,
// the mapping of domain and cluster errors to status codes, the event stream
// (JSON long-poll and SSE), /healthz, /readyz, /metrics and the OpenAPI
// document.
//
// Handlers never touch raft. They depend on the small Cluster interface (cluster.go),
// which *cluster.Node satisfies: a mutation is a routing.Command proposed with
// the caller's idempotency key, and a read is a function run against the
// replicated routing.Machine at the consistency level the caller asks for.
package api
