package traces_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/thrive-loadtest/thrive/traces"
	"github.com/thrive-loadtest/thrive/traces/synth"
)

// layout is a trace written with a Flush every few sessions, so the test knows
// where each block starts and how many sessions come before it.
type layout struct {
	file     []byte
	sessions []*traces.Session
	starts   []int64 // byte offset of each block; starts[0] is the header's end
	before   []int   // sessions in the blocks before each block
}

func newLayout(t *testing.T) *layout {
	t.Helper()
	l := &layout{sessions: synth.New(7).Sessions(24)}
	var buf bytes.Buffer
	w, err := traces.NewWriter(&buf, traces.Meta{Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range l.sessions {
		if i%3 == 0 {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			l.starts = append(l.starts, w.Size())
			l.before = append(l.before, i)
		}
		if err := w.Write(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	l.file = buf.Bytes()
	return l
}

// positions returns about n byte offsets spread over the file, plus the bytes
// around every block boundary, where off-by-one mistakes live.
func (l *layout) positions(n int) []int64 {
	var ps []int64
	step := max(1, int64(len(l.file)/n))
	for p := int64(0); p < int64(len(l.file)); p += step {
		ps = append(ps, p)
	}
	for _, s := range append([]int64{0, 4, 6, 10}, l.starts...) {
		for d := int64(-2); d <= 24; d++ {
			if p := s + d; p >= 0 && p < int64(len(l.file)) {
				ps = append(ps, p)
			}
		}
	}
	return append(ps, int64(len(l.file)-1))
}

// blockAt returns the index of the block holding byte off, or -1 for the
// file header.
func (l *layout) blockAt(off int64) int {
	b := -1
	for i, s := range l.starts {
		if off >= s {
			b = i
		}
	}
	return b
}

func (l *layout) checkPrefix(t *testing.T, got []*traces.Session, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("got %d sessions, want the %d before the damage", len(got), n)
	}
	for i := range got {
		if !reflect.DeepEqual(normalize(got[i]), normalize(l.sessions[i])) {
			t.Fatalf("session %d differs from what was written", i)
		}
	}
}

// TestTruncatedAtManyOffsets cuts the file at many bytes: every session
// before the cut is read, and the error says where the file was cut; a cut
// exactly at a block boundary is told too, by the missing end record.
func TestTruncatedAtManyOffsets(t *testing.T) {
	l := newLayout(t)
	end := int64(len(l.file)) - 24 // where the end record starts
	for _, cut := range l.positions(300) {
		got, err := readAll(t, l.file[:cut])
		b := l.blockAt(cut)
		if b >= 0 && l.starts[b] == cut || cut == end {
			// A cut on a block boundary is a shorter file of whole
			// blocks, which says it lacks its end record.
			var fe *traces.FormatError
			if !errors.As(err, &fe) || !errors.Is(err, traces.ErrTruncated) || fe.Part != "file" || fe.Offset != cut {
				t.Fatalf("cut at %d (block boundary): %v, want the missing end record at %d", cut, err, cut)
			}
			n := len(l.sessions)
			if cut != end {
				n = l.before[b]
			}
			l.checkPrefix(t, got, n)
			continue
		}
		if cut > end {
			// Inside the end record: every session was read.
			if !errors.Is(err, traces.ErrTruncated) {
				t.Fatalf("cut at %d in the end record: %v", cut, err)
			}
			l.checkPrefix(t, got, len(l.sessions))
			continue
		}
		var fe *traces.FormatError
		if !errors.As(err, &fe) || !errors.Is(err, traces.ErrTruncated) {
			t.Fatalf("cut at %d: error %v, want a truncation FormatError", cut, err)
		}
		if b < 0 {
			if fe.Part != "header" || fe.Offset != 0 {
				t.Fatalf("cut at %d in the header: %v", cut, err)
			}
			continue
		}
		if fe.Offset != l.starts[b] {
			t.Fatalf("cut at %d: error names byte %d, want the block at %d", cut, fe.Offset, l.starts[b])
		}
		l.checkPrefix(t, got, l.before[b])
	}
}

// TestFlippedBytes flips bytes all over the file: a damaged block costs
// only its own sessions (reading goes on with the next block, found by its
// magic and header checksum), and the error, at the end, names the damaged
// block and what it cost.
func TestFlippedBytes(t *testing.T) {
	l := newLayout(t)
	end := int64(len(l.file)) - 24
	for _, pos := range l.positions(200) {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			bad := bytes.Clone(l.file)
			bad[pos] ^= mask
			got, err := readAll(t, bad)
			var fe *traces.FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("flip %#x at %d: error %v, want a FormatError", mask, pos, err)
			}
			b := l.blockAt(pos)
			switch {
			case b < 0:
				if fe.Part != "header" {
					t.Fatalf("flip at %d in the header: %v", pos, err)
				}
				continue
			case pos >= end:
				// The end record: every session read, the end is not.
				if len(got) != len(l.sessions) {
					t.Fatalf("flip at %d in the end record: %d sessions", pos, len(got))
				}
				continue
			}
			if !errors.Is(err, traces.ErrCorrupt) || fe.Offset != l.starts[b] || !strings.Contains(err.Error(), "every other session was read") {
				t.Fatalf("flip %#x at %d: %v, want ErrCorrupt at block byte %d", mask, pos, err, l.starts[b])
			}
			// Every session but the damaged block's, in order.
			next := len(l.sessions)
			if b+1 < len(l.starts) {
				next = l.before[b+1]
			}
			want := append(append([]*traces.Session(nil), l.sessions[:l.before[b]]...), l.sessions[next:]...)
			if len(got) != len(want) {
				t.Fatalf("flip %#x at %d: %d sessions, want the %d outside block %d", mask, pos, len(got), len(want), b)
			}
			for i := range got {
				if !reflect.DeepEqual(normalize(got[i]), normalize(want[i])) {
					t.Fatalf("flip at %d: session %d differs", pos, i)
				}
			}
		}
	}
}

// TestOlderVersionsStillRead: files written by thrive before format version
// 3 (testdata/v2.thrv, the layout's sessions as that thrive wrote them) read
// whole, with nothing placed; and as version 1 (no end record), as before.
func TestOlderVersionsStillRead(t *testing.T) {
	l := newLayout(t)
	v2, err := os.ReadFile("testdata/v2.thrv")
	if err != nil {
		t.Fatal(err)
	}
	v1 := bytes.Clone(v2[:len(v2)-24]) // no end record
	v1[4] = 1
	// The header's checksum covers the version.
	n := binary.LittleEndian.Uint32(v1[6:])
	binary.LittleEndian.PutUint32(v1[10+n:], crc32.Checksum(v1[4:10+n], crc32.MakeTable(crc32.Castagnoli)))
	for _, tc := range []struct {
		name string
		file []byte
	}{{"version 2", v2}, {"version 1", v1}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(t, tc.file)
			if err != nil {
				t.Fatal(err)
			}
			l.checkPrefix(t, got, len(l.sessions))
		})
	}
}

func TestNewerVersionRefused(t *testing.T) {
	file := write(t, nil)
	file[4] = traces.Version + 1
	_, err := readAll(t, file)
	if !errors.Is(err, traces.ErrVersion) {
		t.Fatalf("err = %v, want ErrVersion", err)
	}
	want := fmt.Sprintf("header at byte 0: unsupported trace format version: the file has version %d, this thrive reads versions 1 to %d", traces.Version+1, traces.Version)
	if err.Error() != want {
		t.Fatalf("message:\n got %q\nwant %q", err, want)
	}
}

func TestNotATrace(t *testing.T) {
	for _, in := range []string{`{"id":"json"}`, "GIF89a and more bytes", "THR"} {
		_, err := readAll(t, []byte(in))
		if in == "THR" {
			if !errors.Is(err, traces.ErrTruncated) {
				t.Fatalf("%q: %v, want ErrTruncated", in, err)
			}
			continue
		}
		if !errors.Is(err, traces.ErrNotTrace) {
			t.Fatalf("%q: %v, want ErrNotTrace", in, err)
		}
	}
}
