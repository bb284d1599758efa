package testutil

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
)

// TestAddrOutsideEphemeralRange: the address is bindable and its port is
// below the ephemeral range.
func TestAddrOutsideEphemeralRange(t *testing.T) {
	first := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var last int
		fmt.Sscan(string(b), &first, &last)
	}
	for range 20 {
		addr, err := FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		_, p, _ := net.SplitHostPort(addr)
		if port, _ := strconv.Atoi(p); port >= first || port < 1024 {
			t.Fatalf("port %d is not below the ephemeral range (from %d)", port, first)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("address %s not bindable: %v", addr, err)
		}
		l.Close()
	}
}
