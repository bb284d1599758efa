// Package nemesis owns omnirouter's fault-injection test harness: it runs a
// real three-node cluster of `omnirouter serve` processes whose node-to-node
// traffic (raft and the internal HTTP forwarding) goes through a
// fault-injecting TCP proxy, drives it with concurrent routing-engine, agent,
// visitor and operator clients on every channel (chat, messaging, email,
// voice) while a seeded nemesis kills, pauses, partitions and restarts
// nodes, records every operation, checks the history for linearizability
// with porcupine against a model of conversation ownership, and after
// healing checks that the replicas agree byte for byte and that the event
// stream never shows a conversation held twice, an agent routed above
// capacity or against focus mode, or a timer fired twice.
//
// The pieces are usable alone: Net is the partitioning proxy, Cluster the
// process supervisor, Model the porcupine model, Replay the event-stream
// checker. The full run is TestNemesis, skipped unless -nemesis is given:
//
//	go test ./tools/nemesis -nemesis                                   # 60 s, ≥5 faults
//	go test ./tools/nemesis -nemesis -nemesis.duration 5m -timeout 30m  # ≥20 faults
//	go test ./tools/nemesis -nemesis -nemesis.seed 42                  # replay a schedule
package nemesis
