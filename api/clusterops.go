package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/omnirouter/omnirouter/cluster"
	"github.com/omnirouter/omnirouter/routing"
)

// MaxRestoreBytes bounds a restore upload.
const MaxRestoreBytes = 4 << 30

// GET /v1/cluster.
func (s *Server) getCluster(c *gin.Context) {
	s.clusterAnswer(c)
}

// clusterAnswer writes this node's view of the cluster (the answer of the
// membership and backup operations too).
func (s *Server) clusterAnswer(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 5*time.Second)
	defer cancel()
	st := s.cluster.ClusterStatus(ctx)
	if st.ID != "" {
		c.Header("X-Omnirouter-Node", st.ID)
	}
	writeJSON(c, http.StatusOK, clusterView(st))
}

// POST /v1/cluster/join {id, raft_addr, http_addr}: the node joins as a
// nonvoter and becomes a voter once it has caught up. The id and addresses
// are checked here (422 invalid_id, invalid_address naming the field), and
// the leader checks that the raft address answers (422 raft_unreachable).
func (s *Server) joinNode(c *gin.Context) {
	var req struct {
		ID       string `json:"id"`
		RaftAddr string `json:"raft_addr"`
		HTTPAddr string `json:"http_addr"`
	}
	if err := decode(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	if err := routing.ValidID("id", req.ID); err != nil {
		s.fail(c, err)
		return
	}
	if err := cluster.ValidRaftAddr(req.RaftAddr); err != nil {
		s.fail(c, invalid("invalid_address", "raft_addr: %v", err))
		return
	}
	if err := cluster.ValidHTTPAddr(req.HTTPAddr); err != nil {
		s.fail(c, invalid("invalid_address", "http_addr: %v", err))
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 30*time.Second)
	defer cancel()
	j, ok := s.cluster.(Joiner)
	if !ok {
		s.fail(c, errorf(http.StatusNotImplemented, "not_implemented", "this node cannot add members on request; start the new node with --join instead"))
		return
	}
	if err := j.Join(ctx, req.ID, req.RaftAddr, req.HTTPAddr); err != nil {
		s.fail(c, clusterOpError(err))
		return
	}
	s.clusterAnswer(c)
}

// DELETE /v1/cluster/nodes/{id}.
func (s *Server) removeNode(c *gin.Context) {
	id := c.Param("id")
	if err := routing.ValidID("id", id); err != nil {
		s.fail(c, err)
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 30*time.Second)
	defer cancel()
	if err := s.cluster.Remove(ctx, id); err != nil {
		s.fail(c, clusterOpError(err))
		return
	}
	s.clusterAnswer(c)
}

// GET /v1/cluster/snapshot streams a backup of the whole state.
func (s *Server) snapshot(c *gin.Context) {
	extendWriteDeadline(c, 10*time.Minute)
	c.Header("Content-Type", "application/octet-stream")
	c.Header("Content-Disposition", `attachment; filename="omnirouter.backup"`)
	w := &trackingWriter{w: c.Writer}
	if err := s.cluster.Backup(c.Request.Context(), w); err != nil {
		if w.n == 0 {
			c.Header("Content-Disposition", "")
			s.fail(c, clusterOpError(err))
			return
		}
		// Too late for a status: cut the stream so the client sees an error.
		s.log.Error("backup failed mid-stream", "err", err)
		panic(http.ErrAbortHandler)
	}
}

// POST /v1/cluster/restore replaces the whole state with a backup.
func (s *Server) restore(c *gin.Context) {
	if err := requireBodyType(c.Request, "application/octet-stream"); err != nil {
		s.fail(c, err)
		return
	}
	extendWriteDeadline(c, 10*time.Minute)
	_ = http.NewResponseController(c.Writer).SetReadDeadline(time.Now().Add(10 * time.Minute))
	body := http.MaxBytesReader(c.Writer, c.Request.Body, MaxRestoreBytes)
	if err := s.cluster.RestoreBackup(c.Request.Context(), body); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.fail(c, errorf(http.StatusRequestEntityTooLarge, "body_too_large", "backup exceeds %d bytes", int64(MaxRestoreBytes)))
			return
		}
		s.fail(c, clusterOpError(err))
		return
	}
	s.clusterAnswer(c)
}

// clusterOpError maps a membership or backup failure: unavailability as
// usual, anything else as a 422 carrying the cluster's message (a bad
// address, an unknown node, a corrupt backup).
func clusterOpError(err error) error {
	ae := toAPIError(err)
	if ae.Status != http.StatusInternalServerError {
		return ae
	}
	return invalid("cluster_operation_failed", "%v", err)
}

type trackingWriter struct {
	w interface{ Write([]byte) (int, error) }
	n int64
}

func (t *trackingWriter) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	t.n += int64(n)
	return n, err
}

// extendWriteDeadline lets a long response (stream, backup) outlive the
// server's WriteTimeout.
func extendWriteDeadline(c *gin.Context, d time.Duration) {
	// Not every ResponseWriter supports deadlines (httptest's does not);
	// without one there is nothing to extend.
	_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Now().Add(d))
}
