package testutil

// FreeAddr finds a free 127.0.0.1 TCP address for a server that a test
// starts a moment later.
//
// The port is chosen below the kernel's ephemeral range. A port from
// listening on ":0" is an ephemeral one: once it is closed, the kernel may
// hand it out again as the source port of any outgoing connection (tests
// in other packages run at the same time and open thousands), and the
// server that was meant to bind it fails with "address already in use".
import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
)

// FreeAddr returns "127.0.0.1:port" for a port that was free a moment ago and
// is outside the ephemeral range.
func FreeAddr() (string, error) {
	lo, hi := 20000, 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var first, last int
		if n, _ := fmt.Sscan(string(b), &first, &last); n == 2 && first > 2048 {
			lo, hi = first/2, first
		}
	}
	for range 200 {
		port := lo + rand.IntN(hi-lo)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		addr := l.Addr().String()
		l.Close()
		return addr, nil
	}
	return "", fmt.Errorf("testutil: no free port in %d-%d", lo, hi)
}
