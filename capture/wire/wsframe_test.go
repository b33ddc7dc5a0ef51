package wire

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/thrive-loadtest/thrive/traces"
)

// frame encodes one WebSocket frame, masked when mask is non-nil.
func frame(fin bool, op byte, payload []byte, mask []byte) []byte {
	b := []byte{op}
	if fin {
		b[0] |= 0x80
	}
	m := byte(0)
	if mask != nil {
		m = 0x80
	}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, m|byte(n))
	case n <= 65535:
		b = append(b, m|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if mask != nil {
		b = append(b, mask...)
		for i, c := range payload {
			b = append(b, c^mask[i%4])
		}
		return b
	}
	return append(b, payload...)
}

func TestFrameParser(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 10000) // 100,000 bytes
	mask := []byte{1, 2, 3, 4}
	var stream []byte
	stream = append(stream, frame(false, 0x1, []byte("hel"), mask)...)
	stream = append(stream, frame(true, 0x9, []byte("ping!"), mask)...)
	stream = append(stream, frame(true, 0x0, []byte("lo"), mask)...)
	stream = append(stream, frame(true, 0x2, big, mask)...)
	stream = append(stream, frame(true, 0x1, nil, mask)...)
	stream = append(stream, frame(true, 0x8, append([]byte{0x03, 0xe8}, "bye"...), mask)...)

	for _, chunk := range []int{1, 3, 7, 64, 4096, len(stream)} {
		sock := &Socket{}
		p := &FrameParser{Sock: sock, FromClient: true, Limit: 1000, Now: time.Now}
		rng := rand.New(rand.NewPCG(uint64(chunk), 1))
		for rest := stream; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(chunk))
			p.Feed(rest[:n])
			rest = rest[n:]
		}
		frames, cl, errs := sock.Seal()
		if len(errs) != 0 {
			t.Fatalf("chunk %d: errors %v", chunk, errs)
		}
		if len(frames) != 4 {
			t.Fatalf("chunk %d: %d frames, want ping, text, binary, empty text", chunk, len(frames))
		}
		if f := frames[0].Frame; f.Opcode != traces.OpPing || string(f.Payload.Data) != "ping!" {
			t.Fatalf("chunk %d: first frame %+v", chunk, f)
		}
		if f := frames[1].Frame; f.Opcode != traces.OpText || string(f.Payload.Data) != "hello" || !f.FromClient {
			t.Fatalf("chunk %d: joined message %q", chunk, f.Payload.Data)
		}
		f := frames[2].Frame
		if f.Opcode != traces.OpBinary || f.Payload.Len() != int64(len(big)) || !bytes.Equal(f.Payload.Data, big[:1000]) || f.Payload.SHA256 != sha256.Sum256(big) {
			t.Fatalf("chunk %d: capped message: %d bytes kept, size %d", chunk, len(f.Payload.Data), f.Payload.Len())
		}
		if f := frames[3].Frame; f.Opcode != traces.OpText || len(f.Payload.Data) != 0 {
			t.Fatalf("chunk %d: empty message %+v", chunk, f)
		}
		if cl == nil || cl.Code != 1000 || cl.Reason != "bye" || !cl.ByClient {
			t.Fatalf("chunk %d: close %+v", chunk, cl)
		}
	}
}

func TestFrameParserStopsOnProtocolErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream []byte
	}{
		{"rsv bits", []byte{0xc1, 0x00}},
		{"long control", frame(true, 0x9, make([]byte, 126), nil)},
		{"stray continuation", frame(true, 0x0, []byte("x"), nil)},
		{"interleaved messages", append(frame(false, 0x1, []byte("a"), nil), frame(true, 0x1, []byte("b"), nil)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := &Socket{}
			p := &FrameParser{Sock: sock, Limit: 100, Now: time.Now}
			p.Feed(tc.stream)
			p.Feed(frame(true, 0x1, []byte("after"), nil))
			frames, _, errs := sock.Seal()
			if len(errs) != 1 || len(frames) != 0 {
				t.Fatalf("errors %v, frames %d", errs, len(frames))
			}
		})
	}
}

func TestBodyTap(t *testing.T) {
	data := bytes.Repeat([]byte("abcdefghij"), 1000)
	for _, limit := range []int{0, 5, 10000, 20000} {
		tap := NewTap(limit)
		for chunk := range slices.Chunk(data, 7) {
			tap.Observe(chunk)
		}
		b := tap.Body()
		if b.Len() != int64(len(data)) || !bytes.Equal(b.Data, data[:min(limit, len(data))]) {
			t.Fatalf("limit %d: kept %d of size %d", limit, len(b.Data), b.Len())
		}
		if limit < len(data) && b.SHA256 != sha256.Sum256(data) {
			t.Fatalf("limit %d: wrong hash", limit)
		}
	}
}
