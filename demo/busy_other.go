//go:build !linux

package demo

import "time"

// threadCPU returns, with no thread CPU clock here, the time since the
// process started.
func threadCPU() time.Duration { return wallClock() }
