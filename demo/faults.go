package demo

import (
	"math"
	"sync/atomic"
)

// every fires in an exact share of calls, spread evenly: call n fires when
// floor(n*ratio) grows. It is safe for concurrent use.
type every struct {
	ratio float64
	n     atomic.Uint64
}

func (e *every) fire() bool {
	if e.ratio <= 0 {
		return false
	}
	n := float64(e.n.Add(1))
	return math.Floor(n*e.ratio) > math.Floor((n-1)*e.ratio)
}
