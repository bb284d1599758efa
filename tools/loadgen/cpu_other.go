//go:build !unix

package loadgen

import "time"

// processCPU is not measured here: the tool's CPU reads as 0.
func processCPU() time.Duration { return 0 }
