//go:build !linux

package demo

import "time"

// threadCPU returns, with no thread CPU clock here, the wall clock.
func threadCPU() time.Duration { return wallClock() }
