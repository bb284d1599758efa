package cluster

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/omnirouter/omnirouter/cluster/storage"
	"github.com/omnirouter/omnirouter/internal/wire"
	"github.com/omnirouter/omnirouter/routing"
)

// fsm is the replicated state: the routing machine plus the node registry
// (node id → raft and HTTP addresses). raft calls Apply, Snapshot, Restore and
// StoreConfiguration from one goroutine; readers take mu.RLock.
type fsm struct {
	mu    sync.RWMutex
	m     *routing.Machine
	nodes map[string]NodeInfo
	// registry is a copy of nodes for node(), read without mu: every write
	// a follower forwards looks the leader's address up, and mu is held for
	// the whole apply of a batch. Replaced (never changed) with nodes.
	registry atomic.Pointer[map[string]NodeInfo]

	// applied is the index of the last log entry the state reflects (commands
	// and configuration entries; raft's no-op and barrier entries are never
	// delivered here).
	applied atomic.Uint64
	// appliedCh is closed and replaced after every apply (guarded by mu).
	appliedCh chan struct{}
	// events wakes event readers after applies that emitted events (or a
	// restore).
	events *broadcast

	restores atomic.Uint64 // snapshot restores, for tests and status

	snaps storage.SnapshotWatch // when to snapshot

	// beforeApply, when set, is told of each entry before it is applied
	// (raft calls Apply only for committed entries).
	beforeApply func(data []byte)
}

func newFSM() *fsm {
	f := &fsm{
		m:         routing.New(),
		nodes:     map[string]NodeInfo{},
		appliedCh: make(chan struct{}),
		events:    newBroadcast(),
	}
	f.publishNodes()
	return f
}

// publishNodes makes the registry's current entries what node() returns;
// mu is held (or the fsm is not shared yet).
func (f *fsm) publishNodes() {
	reg := maps.Clone(f.nodes)
	f.registry.Store(&reg)
}

// applyResult is what one entry produced: the routing outcome, or a cluster
// entry's error (a refused restore).
type applyResult struct {
	out routing.Outcome
	err error
}

var (
	_ raft.FSM                = (*fsm)(nil)
	_ raft.ConfigurationStore = (*fsm)(nil)
)

// Apply applies one log entry: a single entry returns applyResult, a batch
// returns []applyResult in order. An entry this code cannot decode stops the
// process: applying the rest of the log without it would let this replica
// diverge from the others.
func (f *fsm) Apply(l *raft.Log) any {
	f.snaps.Applied(len(l.Data))
	if f.beforeApply != nil {
		f.beforeApply(l.Data)
	}
	e, err := decodeEntry(l.Data)
	if err != nil {
		panic(fmt.Sprintf("cluster: FATAL: raft log entry %d (term %d) cannot be applied by this version: %v; "+
			"stopping so that this replica does not diverge (upgrade the binary)", l.Index, l.Term, err))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var events bool
	var res any
	if e.typ == typeBatch {
		rs := make([]applyResult, len(e.batch))
		for i := range e.batch {
			rs[i] = f.applyOne(&e.batch[i], &events)
		}
		res = rs
	} else {
		res = f.applyOne(&e, &events)
	}
	f.advance(l.Index, events)
	return res
}

// applyOne applies one non-batch entry; mu is held.
func (f *fsm) applyOne(e *entry, events *bool) applyResult {
	switch e.typ {
	case typeRegister:
		f.nodes[e.node.ID] = e.node
		f.publishNodes()
		return applyResult{}
	case typeDeregister:
		delete(f.nodes, e.id)
		f.publishNodes()
		return applyResult{}
	case typeRestore:
		// Every replica reads the same bytes with the same code: a refusal is
		// deterministic, so it is an answer, not a divergence.
		m, err := routing.ReadSnapshot(bytes.NewReader(e.data))
		if err != nil {
			return applyResult{err: fmt.Errorf("%w: %w", ErrBadBackup, err)}
		}
		m.ContinueEventsAfter(f.m.LastEventID())
		f.m = m
		*events = true
		return applyResult{}
	case typeBatch:
		panic("cluster: nested batch") // refused by the decoder
	default:
		out, n := f.m.ApplyCounting(e.at, e.key, e.cmd)
		if n > 0 {
			*events = true
		}
		return applyResult{out: out}
	}
}

// advance records that the state reflects index and wakes waiters; mu is held.
func (f *fsm) advance(index uint64, events bool) {
	f.applied.Store(index)
	close(f.appliedCh)
	f.appliedCh = make(chan struct{})
	if events {
		f.events.publish(f.m.LastEventID())
	}
}

// StoreConfiguration is called for every committed configuration entry; it
// only moves the applied index, so read-index waits do not stall on them.
func (f *fsm) StoreConfiguration(index uint64, _ raft.Configuration) {
	f.mu.Lock()
	f.advance(index, false)
	f.mu.Unlock()
}

// Snapshot clones the state in O(1) under the lock; Persist serializes the
// clone while applies go on.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock() // Clone writes the machine's copy-on-write token
	defer f.mu.Unlock()
	return &fsmSnapshot{
		m:       f.m.Clone(),
		nodes:   sortedNodes(f.nodes),
		applied: f.applied.Load(),
		watch:   &f.snaps,
		mark:    f.snaps.Position(),
	}, nil
}

// Restore replaces the state by a snapshot: it builds a fresh machine and
// registry and swaps them in.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	counted := &countingReader{r: rc}
	br := bufio.NewReaderSize(counted, 64<<10)
	nodes, applied, err := readSnapshotHeader(br)
	if err != nil {
		return err
	}
	m, err := routing.ReadSnapshot(br)
	if err != nil {
		return fmt.Errorf("cluster: restore routing state: %w", err)
	}
	reg := make(map[string]NodeInfo, len(nodes))
	for _, n := range nodes {
		reg[n.ID] = n
	}
	f.mu.Lock()
	f.m, f.nodes = m, reg
	f.publishNodes()
	f.advance(applied, true)
	f.mu.Unlock()
	f.restores.Add(1)
	f.snaps.Taken(applied, f.snaps.Position(), counted.n)
	return nil
}

func sortedNodes(reg map[string]NodeInfo) []NodeInfo {
	ids := slices.Sorted(maps.Keys(reg))
	out := make([]NodeInfo, len(ids))
	for i, id := range ids {
		out[i] = reg[id]
	}
	return out
}

// node returns a registry entry. It does not wait for an apply in
// progress.
func (f *fsm) node(id string) (NodeInfo, bool) {
	n, ok := (*f.registry.Load())[id]
	return n, ok
}

// --- snapshot format -------------------------------------------------------
//
//	magic "ORFS" | uvarint header length | header | CRC-32C of all before it
//	(4 bytes, big-endian) | routing snapshot (which ends with its own length
//	and checksum)
//	header: version byte, uvarint applied index, uvarint node count, then per
//	node (sorted by id) id, raft address, HTTP address.

const (
	snapshotMagic   = "ORFS"
	snapshotVersion = 1
	maxHeaderLen    = 16 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type fsmSnapshot struct {
	m       *routing.Machine
	nodes   []NodeInfo
	applied uint64

	watch *storage.SnapshotWatch // told the snapshot's size once it is stored
	mark  uint64                 // the watch's log-byte count when it was cut
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	counted := &countingWriter{w: sink}
	if err := s.write(counted); err != nil {
		sink.Cancel()
		return err
	}
	if err := sink.Close(); err != nil {
		return err
	}
	s.watch.Taken(s.applied, s.mark, counted.n)
	return nil
}

func (s *fsmSnapshot) write(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var h wire.Encoder
	h.Byte(snapshotVersion)
	h.Uvarint(s.applied)
	h.Uvarint(uint64(len(s.nodes)))
	for _, n := range s.nodes {
		h.String(n.ID)
		h.String(n.RaftAddr)
		h.String(n.HTTPAddr)
	}
	var pre wire.Encoder
	pre.Buf = append(pre.Buf, snapshotMagic...)
	pre.Uvarint(uint64(len(h.Buf)))
	pre.Buf = append(pre.Buf, h.Buf...)
	pre.Buf = binary.BigEndian.AppendUint32(pre.Buf, crc32.Checksum(pre.Buf, castagnoli))
	if _, err := bw.Write(pre.Buf); err != nil {
		return err
	}
	if err := s.m.WriteSnapshot(bw); err != nil {
		return fmt.Errorf("cluster: write routing snapshot: %w", err)
	}
	return bw.Flush()
}

func (s *fsmSnapshot) Release() {}

func readSnapshotHeader(br *bufio.Reader) ([]NodeInfo, uint64, error) {
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != snapshotMagic {
		return nil, 0, fmt.Errorf("cluster: not a cluster snapshot (bad magic)")
	}
	n, err := binary.ReadUvarint(br)
	if err != nil || n > maxHeaderLen {
		return nil, 0, fmt.Errorf("cluster: corrupt snapshot header length")
	}
	hb := make([]byte, n+4)
	if _, err := io.ReadFull(br, hb); err != nil {
		return nil, 0, fmt.Errorf("cluster: truncated snapshot header: %w", err)
	}
	covered := binary.AppendUvarint([]byte(snapshotMagic), n)
	covered = append(covered, hb[:n]...)
	if binary.BigEndian.Uint32(hb[n:]) != crc32.Checksum(covered, castagnoli) {
		return nil, 0, fmt.Errorf("cluster: snapshot header checksum mismatch (the file is damaged)")
	}
	hb = hb[:n]
	d := wire.NewDecoder(hb)
	if v := d.Byte(); d.Err() == nil && v != snapshotVersion {
		return nil, 0, fmt.Errorf("cluster: unknown snapshot version %d", v)
	}
	applied := d.Uvarint()
	cnt := d.Len(d.Remaining())
	nodes := make([]NodeInfo, 0, cnt)
	for i := 0; i < cnt && d.Err() == nil; i++ {
		nodes = append(nodes, NodeInfo{ID: d.String(), RaftAddr: d.String(), HTTPAddr: d.String()})
	}
	if d.Err() == nil && d.Remaining() != 0 {
		d.Fail("trailing header bytes")
	}
	if err := d.Err(); err != nil {
		return nil, 0, fmt.Errorf("cluster: snapshot header: %w", err)
	}
	return nodes, applied, nil
}
