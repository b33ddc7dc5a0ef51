package traces

import (
	"encoding/binary"
	"hash/crc32"
	"time"
)

// Version is the trace format version this thrive writes, and the newest it
// reads. Version 2 adds the end record; version 3 adds what placed each
// exchange in its session (Session.Evidence, Continues, Strays and
// Exchange.Placed); version 4 adds sessions written in parts (a part number
// and whether more follow, WebSocket.Open), so that a session of any length
// and size reaches the file. Older files are read as before.
const Version = 4

// MaxBlockSize bounds the decoded size of a block, and so the memory a Reader
// needs for one block. A session larger than maxRecord is written in parts,
// which the Reader joins.
const MaxBlockSize = 256 << 20

// maxRecord is the largest encoding of a session a Writer puts in one
// record; a larger session is written in parts of at most this size (an
// exchange, or a WebSocket's frames, split at their own boundaries).
const maxRecord = 32 << 20

// DefaultBlockSize is the decoded size at which a Writer closes a block. Larger
// blocks compress a little better; smaller ones lose less to a damaged byte.
const DefaultBlockSize = 4 << 20

const (
	fileMagic     = "THRV"
	blockMagic    = "TBLK"
	endMagic      = "TEND"
	fileHeadLen   = 4 + 2 + 4 // magic, version, meta length
	blockHeadLen  = 4 + 4*5   // magic, stored, raw, sessions, payload crc, header crc
	maxMetaLength = 1 << 20
)

// checksum is CRC-32C, which has hardware support on amd64 and arm64.
// crc32.MakeTable returns a table the standard library builds once, so this
// needs no package state of its own.
func checksum(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

// Meta is the file header's description of a trace.
type Meta struct {
	// Version is the format version of the file; set by Reader, ignored by
	// Writer, which always writes Version.
	Version int `json:"-"`
	// Created is when the trace was started.
	Created time.Time `json:"created,omitzero"`
	// Source says what recorded the trace: "proxy", "pcap", "har", "filter"
	// or a tool of the user's.
	Source string `json:"source,omitempty"`
	// Target is the backend the traffic was addressed to.
	Target string `json:"target,omitempty"`
	// Redacted lists what capture replaced with placeholders, such as
	// "header:Authorization" or "json:password".
	Redacted []string `json:"redacted,omitempty"`
}

type blockHead struct {
	stored, raw, sessions, crc uint32
}

func (h *blockHead) put(b []byte) {
	copy(b, blockMagic)
	binary.LittleEndian.PutUint32(b[4:], h.stored)
	binary.LittleEndian.PutUint32(b[8:], h.raw)
	binary.LittleEndian.PutUint32(b[12:], h.sessions)
	binary.LittleEndian.PutUint32(b[16:], h.crc)
	binary.LittleEndian.PutUint32(b[20:], checksum(b[:20]))
}

// endRecord closes a version 2 file: "TEND" | blocks u32 | sessions u64 |
// reserved u32 | crc32c u32 of the 20 bytes before, as long as a block
// header, so that a reader tells a file cut at a block boundary from a
// whole one.
type endRecord struct {
	blocks   uint32
	sessions uint64
}

func (e *endRecord) put(b []byte) {
	copy(b, endMagic)
	binary.LittleEndian.PutUint32(b[4:], e.blocks)
	binary.LittleEndian.PutUint64(b[8:], e.sessions)
	binary.LittleEndian.PutUint32(b[16:], 0)
	binary.LittleEndian.PutUint32(b[20:], checksum(b[:20]))
}

func (e *endRecord) parse(b []byte) bool {
	if string(b[:4]) != endMagic || binary.LittleEndian.Uint32(b[20:]) != checksum(b[:20]) {
		return false
	}
	e.blocks = binary.LittleEndian.Uint32(b[4:])
	e.sessions = binary.LittleEndian.Uint64(b[8:])
	return true
}

// parse reads a block header; ok is false when its magic or checksum is wrong.
func (h *blockHead) parse(b []byte) (ok bool) {
	if string(b[:4]) != blockMagic || binary.LittleEndian.Uint32(b[20:]) != checksum(b[:20]) {
		return false
	}
	h.stored = binary.LittleEndian.Uint32(b[4:])
	h.raw = binary.LittleEndian.Uint32(b[8:])
	h.sessions = binary.LittleEndian.Uint32(b[12:])
	h.crc = binary.LittleEndian.Uint32(b[16:])
	return h.stored <= MaxBlockSize+MaxBlockSize/8 && h.raw <= MaxBlockSize
}
