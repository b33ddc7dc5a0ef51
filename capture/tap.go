package capture

import (
	"crypto/sha256"
	"hash"

	"github.com/thrive-loadtest/thrive/traces"
)

// bodyTap watches a body go through the proxy, keeping its first limit
// bytes, its size and, once it outgrows limit, a SHA-256 of the whole. Only
// the goroutine that relays the body touches it until the exchange is
// complete.
type bodyTap struct {
	limit int
	data  []byte
	size  int64
	sum   hash.Hash // non-nil once size > limit
}

func newBodyTap(limit int) *bodyTap { return &bodyTap{limit: limit} }

func (t *bodyTap) observe(b []byte) {
	if t == nil || len(b) == 0 { // nil: a body not being recorded
		return
	}
	t.size += int64(len(b))
	if room := t.limit - len(t.data); room > 0 {
		t.data = append(t.data, b[:min(room, len(b))]...)
	}
	if t.sum == nil && t.size > int64(t.limit) {
		t.sum = sha256.New()
		t.sum.Write(t.data)
		// The part of b past what data kept goes in below.
		if kept := len(t.data) - int(t.size-int64(len(b))); kept < len(b) {
			t.sum.Write(b[max(kept, 0):])
		}
		return
	}
	if t.sum != nil {
		t.sum.Write(b)
	}
}

// body returns what the tap saw as a traces.Body.
func (t *bodyTap) body() traces.Body {
	if t == nil {
		return traces.Body{}
	}
	b := traces.Body{Data: t.data}
	if t.sum != nil {
		b.Size = t.size
		copy(b.SHA256[:], t.sum.Sum(nil))
	}
	return b
}
