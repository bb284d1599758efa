package nemesis

import (
	"bufio"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

func echoServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return l.Addr().String()
}

// roundTrip sends a line through addr and reports whether it came back
// within d.
func roundTrip(c net.Conn, d time.Duration) bool {
	_ = c.SetDeadline(time.Now().Add(d))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "ping\n"
}

func dialOK(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestProxyPartitionAndHeal cuts a node off as the destination (refuse) and
// as the source (blackhole): open connections die, new ones carry nothing,
// and healing restores traffic.
func TestProxyPartitionAndHeal(t *testing.T) {
	target := echoServer(t)
	me := os.Getpid()
	n := NewNet(ProcResolver(func() map[int]string { return map[int]string{me: "client"} }))
	t.Cleanup(n.Close)
	addr, err := n.Listen("server", target)
	if err != nil {
		t.Fatal(err)
	}

	c1 := dialOK(t, addr)
	if !roundTrip(c1, 2*time.Second) {
		t.Fatal("no traffic through a healthy proxy")
	}
	if got := n.Unresolved.Load(); got != 0 {
		t.Fatalf("the dialer of %d connections was not named", got)
	}

	// Destination cut off, refusing.
	n.Partition("server", Refuse)
	if roundTrip(c1, 500*time.Millisecond) {
		t.Fatal("an open connection to a partitioned node still carries traffic")
	}
	if roundTrip(dialOK(t, addr), 500*time.Millisecond) {
		t.Fatal("a new connection to a partitioned node carries traffic")
	}
	n.Heal("server")
	if !roundTrip(dialOK(t, addr), 2*time.Second) {
		t.Fatal("no traffic after healing")
	}

	// Source cut off (this process is "client"), blackholing.
	c2 := dialOK(t, addr)
	if !roundTrip(c2, 2*time.Second) {
		t.Fatal("no traffic before the second partition")
	}
	n.Partition("client", Blackhole)
	if roundTrip(c2, 500*time.Millisecond) {
		t.Fatal("an open connection from a partitioned node still carries traffic")
	}
	c3 := dialOK(t, addr) // accepted, then swallowed
	if roundTrip(c3, 500*time.Millisecond) {
		t.Fatal("a blackholed connection carries traffic")
	}
	n.Heal("client")
	// The blackholed connection is closed at heal, so its dialer reconnects.
	_ = c3.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c3.Read(make([]byte, 1)); err == nil {
		t.Fatal("a blackholed connection survived the heal")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("a blackholed connection was not closed at heal")
	}
	if !roundTrip(dialOK(t, addr), 2*time.Second) {
		t.Fatal("no traffic after the second heal")
	}

	// A partition of an unrelated node leaves this link alone.
	c4 := dialOK(t, addr)
	n.Partition("elsewhere", Refuse)
	if !roundTrip(c4, 2*time.Second) {
		t.Fatal("partitioning another node cut this link")
	}
	n.HealAll()
}
