package wire

import (
	"crypto/sha256"
	"hash"

	"github.com/thrive-loadtest/thrive/traces"
)

// Tap watches a body go through the proxy, keeping its first limit
// bytes, its size and, once it outgrows limit, a SHA-256 of the whole. Only
// the goroutine that relays the body touches it until the exchange is
// complete.
type Tap struct {
	limit int
	data  []byte
	size  int64
	sum   hash.Hash // non-nil once size > limit
	// digest is the SHA-256 of a body another source cut short (TapOf),
	// when known is set.
	digest [sha256.Size]byte
	known  bool
}

func NewTap(limit int) *Tap { return &Tap{limit: limit} }

// MakeTap returns a tap as a value, to keep in a struct of its own.
func MakeTap(limit int) Tap { return Tap{limit: limit} }

// Expect makes room for a body of n bytes, as its Content-Length says,
// or for the first limit of them, so that they come without the copies
// that growing makes. A Content-Length is the sender's word, so it makes
// room for at most expectRoom bytes on it.
func (t *Tap) Expect(n int64) {
	if n > 0 && t != nil && t.data == nil {
		t.data = make([]byte, 0, min(n, int64(t.limit), expectRoom))
	}
}

// expectRoom bounds the room Expect makes: the proxy reads heads from
// anyone who connects, and a head that announces a body and sends none
// must not hold much memory on its word (a body past it grows as it
// comes).
const expectRoom = 32 << 10

// TapOf returns a tap that saw b, a body another source recorded (a packet
// capture, a HAR), with limit as a relay's tap has it: b's first limit
// bytes, and b's whole size and SHA-256 when b was cut short, by the source
// or by limit. A body within limit is kept, not copied: the source does not
// change it after.
func TapOf(b traces.Body, limit int) *Tap {
	t := NewTap(limit)
	if !b.Truncated() {
		if len(b.Data) <= limit {
			t.data, t.size = b.Data[:len(b.Data):len(b.Data)], int64(len(b.Data))
			return t
		}
		t.Observe(b.Data) // the first limit bytes copied: b's array is not held for them
		return t
	}
	t.data = b.Data[:min(limit, len(b.Data))]
	t.size, t.digest, t.known = b.Len(), b.SHA256, true
	return t
}

func (t *Tap) Observe(b []byte) {
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
func (t *Tap) Body() traces.Body {
	if t == nil {
		return traces.Body{}
	}
	b := traces.Body{Data: t.data}
	if t.known {
		b.Size, b.SHA256 = t.size, t.digest
	}
	if t.sum != nil {
		b.Size = t.size
		copy(b.SHA256[:], t.sum.Sum(nil))
	}
	return b
}

// Data returns the bytes kept: all of the body, or its first limit bytes.
func (t *Tap) Data() []byte { return t.data }

// Size returns the body's size so far.
func (t *Tap) Size() int64 { return t.size }

// Whole reports whether Data holds all of the body.
func (t *Tap) Whole() bool { return t.sum == nil && !t.known }
